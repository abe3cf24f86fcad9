//! The weak collections (`WeakValueMap`, `WeakKeyMap`, `WeakSet`), written
//! once for both heaps: `weakref` and `sync::weakref` each expand
//! [`weak_collections!`] with their handle types in scope.

/// Expands to the weak collections and their helpers. The calling module
/// supplies `Gc`, `Weak`, `Registered`, `HookGuard`, `addr_of` (the address
/// that identifies an object while a weak handle keeps it allocated), and
/// the death queue: `Slot<K>` (the cell a queue lives in), `Queue<K>` (a
/// shared `Slot`), `new_queue()` and `queue(&Slot<K>)` (its contents,
/// borrowed or locked). The arguments: `root`, the path the doc examples
/// import from; `unsized`, `?Sized` where values may be unsized; `obj`,
/// the bounds of the objects the collections hold weakly; `send`, the
/// bounds a `WeakValueMap` key needs besides `Eq + Hash + Clone + 'static`
/// (its death hook may run on another thread).
macro_rules! weak_collections {
    (
        root: $root:literal,
        unsized: [$($unsized:tt)*],
        obj: [$($obj:tt)*],
        send: [$($send:tt)*] $(,)?
    ) => {
        /// How many of the deaths queued in `q` satisfy `still_listed`, without
        /// holding the queue while it runs: it hashes and compares keys (user
        /// code), which may drop the last handle to another value of the map,
        /// whose death hook queues onto `q` (a borrow held across that made the
        /// hook panic and its death was lost; on the process-wide heap, a lock
        /// held across it deadlocked). The queue is taken out and put back, deaths
        /// queued meanwhile after it, also when `still_listed` panics.
        fn count_queued<K>(q: &Slot<K>, still_listed: impl Fn(&K, u64) -> bool) -> usize {
            struct Back<'a, K>(&'a Slot<K>, Vec<(K, u64)>);
            impl<K> Drop for Back<'_, K> {
                fn drop(&mut self) {
                    let q = self.0;
                    let mut q = queue(q);
                    let newer = core::mem::replace(&mut *q, core::mem::take(&mut self.1));
                    q.extend(newer);
                }
            }
            let taken = core::mem::take(&mut *queue(q));
            let back = Back(q, taken);
            back.1.iter().filter(|(k, n)| still_listed(k, *n)).count()
        }

        /// The next entry number of a map: tells a queued death from a later entry
        /// under the same key.
        fn next_number(c: &mut u64) -> u64 {
            let n = *c;
            *c += 1;
            n
        }

        /// One entry of a [`WeakValueMap`]. The hook is the first field, so that
        /// it is removed before anything else of the entry is dropped.
        struct ValueEntry<V: $($unsized)*> {
            _hook: HookGuard,
            value: Weak<V>,
            number: u64,
        }

        /// A map whose values are held weakly (Python's `WeakValueDictionary`): an
        /// entry goes away when its value dies.
        ///
        /// Each entry puts a death hook on its value, which queues the key; the
        /// map removes queued entries at its next call, so dead entries cost no
        /// sweep over the map. [`len`](WeakValueMap::len) counts the live entries.
        ///
        /// # Examples
        ///
        /// A cache that does not keep its objects alive:
        ///
        /// ```
        /// # extern crate ouro_refobj as ouro;
        #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
        ///
        /// let mut cache = WeakValueMap::new();
        /// let big = Gc::new(vec![0u8; 1024]);
        /// cache.insert("big", &big);
        /// assert!(Gc::ptr_eq(&cache.get("big").unwrap(), &big));
        /// assert_eq!(cache.len(), 1);
        /// drop(big);
        /// assert!(cache.get("big").is_none());
        /// assert_eq!(cache.len(), 0);
        /// ```
        pub struct WeakValueMap<K, V: $($unsized)*> {
            map: HashMap<K, ValueEntry<V>>,
            dead: Queue<K>,
            numbers: u64,
        }

        impl<K: Eq + Hash + Clone + $($send)* 'static, V: $($obj)*> WeakValueMap<K, V> {
            /// An empty map.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" let m: ", $root, "weakref::WeakValueMap<u32, String> = ", $root, "weakref::WeakValueMap::new();")]
            /// assert!(m.is_empty());
            /// ```
            pub fn new() -> Self {
                WeakValueMap {
                    map: HashMap::new(),
                    dead: new_queue(),
                    numbers: 0,
                }
            }

            /// Removes the entries whose values died (queued by their hooks).
            /// Removing them drops keys (user code), which may kill more values:
            /// repeated until the queue stays empty.
            fn purge(&mut self) {
                loop {
                    let dead = core::mem::take(&mut *queue(&self.dead));
                    if dead.is_empty() {
                        return;
                    }
                    let mut gone = Vec::with_capacity(dead.len());
                    for (k, n) in &dead {
                        if self.map.get(k).is_some_and(|e| e.number == *n) {
                            gone.extend(self.map.remove_entry(k));
                        }
                    }
                    // Keys and entries are dropped (user code) once the queue and
                    // the map are consistent again.
                    drop((dead, gone));
                }
            }

            /// Maps `key` to `value`, held weakly; returns the value it replaces,
            /// if that is still alive.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
            /// let mut m = WeakValueMap::new();
            /// let (a, b) = (Gc::new(1), Gc::new(2));
            /// assert!(m.insert(7, &a).is_none());
            /// assert!(Gc::ptr_eq(&m.insert(7, &b).unwrap(), &a));
            /// ```
            pub fn insert(&mut self, key: K, value: &Gc<V>) -> Option<Gc<V>> {
                self.purge();
                let number = next_number(&mut self.numbers);
                let dead = self.dead.clone();
                let k = key.clone();
                let hook = Registered::add(value, Box::new(move || queue(&dead).push((k, number))));
                if hook.is_none() {
                    // Dead already: nothing to hold.
                    return self.remove(&key);
                }
                let entry = ValueEntry {
                    _hook: HookGuard(hook),
                    value: Gc::downgrade(value),
                    number,
                };
                let old = self.map.insert(key, entry);
                old.and_then(|e| e.value.upgrade())
            }

            /// A handle to the value of `key`, if it is still alive.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
            /// let mut m = WeakValueMap::new();
            /// let a = Gc::new(1);
            /// m.insert("a", &a);
            /// assert_eq!(*m.get("a").unwrap(), 1);
            /// assert!(m.get("b").is_none());
            /// ```
            pub fn get<Q>(&self, key: &Q) -> Option<Gc<V>>
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.map.get(key)?.value.upgrade()
            }

            /// Whether `key` maps to a live value.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
            /// let mut m = WeakValueMap::new();
            /// let a = Gc::new(1);
            /// m.insert(1, &a);
            /// assert!(m.contains_key(&1));
            /// drop(a);
            /// assert!(!m.contains_key(&1));
            /// ```
            pub fn contains_key<Q>(&self, key: &Q) -> bool
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.map
                    .get(key)
                    .is_some_and(|e| e.value.strong_count() > 0)
            }

            /// Removes `key`; returns its value if it was still alive.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
            /// let mut m = WeakValueMap::new();
            /// let a = Gc::new(1);
            /// m.insert(1, &a);
            /// assert!(Gc::ptr_eq(&m.remove(&1).unwrap(), &a));
            /// assert!(m.is_empty());
            /// ```
            pub fn remove<Q>(&mut self, key: &Q) -> Option<Gc<V>>
            where
                K: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                self.purge();
                let e = self.map.remove(key)?;
                e.value.upgrade()
            }

            /// The number of entries whose values are alive.
            ///
            /// Counted as entries minus the deaths queued since the map's last
            /// `&mut` call (none in the common case). From inside a
            /// `Drop` or a hook of a collection that is freeing values of the map,
            /// values whose hooks have not run yet are still counted.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
            /// let mut m = WeakValueMap::new();
            /// let (a, b) = (Gc::new(1), Gc::new(2));
            /// m.insert(1, &a);
            /// m.insert(2, &b);
            /// drop(a);
            /// assert_eq!(m.len(), 1);
            /// ```
            pub fn len(&self) -> usize {
                let queued = count_queued(&self.dead, |k, n| {
                    self.map.get(k).is_some_and(|e| e.number == n)
                });
                self.map.len() - queued
            }

            /// Whether no entry has a live value.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" let m = ", $root, "weakref::WeakValueMap::<u8, u8>::default();")]
            /// assert!(m.is_empty());
            /// ```
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Removes every entry.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
            /// let mut m = WeakValueMap::new();
            /// let a = Gc::new(1);
            /// m.insert(1, &a);
            /// m.clear();
            /// assert!(m.is_empty());
            /// ```
            pub fn clear(&mut self) {
                let map = core::mem::take(&mut self.map);
                drop(map);
                queue(&self.dead).clear();
            }

            /// The live entries, each with a strong handle to its value (taken as
            /// the iteration reaches it).
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakValueMap};")]
            /// let mut m = WeakValueMap::new();
            /// let (a, b) = (Gc::new(1), Gc::new(2));
            /// m.insert("a", &a);
            /// m.insert("b", &b);
            /// drop(b);
            /// let live: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
            /// assert_eq!(live, [("a", 1)]);
            /// ```
            pub fn iter(&self) -> impl Iterator<Item = (&K, Gc<V>)> + '_ {
                self.map
                    .iter()
                    .filter_map(|(k, e)| Some((k, e.value.upgrade()?)))
            }
        }

        impl<K: Eq + Hash + Clone + $($send)* 'static, V: $($obj)*> Default for WeakValueMap<K, V> {
            fn default() -> Self {
                WeakValueMap::new()
            }
        }

        impl<K: fmt::Debug, V: fmt::Debug + $($unsized)*> fmt::Debug for WeakValueMap<K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(
                        self.map
                            .iter()
                            .filter_map(|(k, e)| Some((k, e.value.upgrade()?))),
                    )
                    .finish()
            }
        }

        /// One entry of a [`WeakKeyMap`]. The hook is the first field, so that it
        /// is removed before the value (user code) is dropped.
        struct KeyEntry<K: $($unsized)*, V> {
            hook: HookGuard,
            key: Weak<K>,
            value: V,
            number: u64,
        }

        /// A map whose keys are objects held weakly and compared by identity
        /// (Python's `WeakKeyDictionary`, for objects that hash by `id`): an entry
        /// goes away, with its value, when its key dies.
        ///
        /// Dead entries are queued by the keys' death hooks and removed at the
        /// map's next call; [`len`](WeakKeyMap::len) counts the live entries.
        ///
        /// # Examples
        ///
        /// Data attached to objects without changing their type:
        ///
        /// ```
        /// # extern crate ouro_refobj as ouro;
        #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
        ///
        /// let mut notes = WeakKeyMap::new();
        /// let (a, b) = (Gc::new(1), Gc::new(1)); // equal values, two objects
        /// notes.insert(&a, "first");
        /// notes.insert(&b, "second");
        /// assert_eq!(notes.get(&a), Some(&"first"));
        /// drop(a);
        /// assert_eq!(notes.len(), 1);
        /// assert_eq!(notes.get(&b), Some(&"second"));
        /// ```
        pub struct WeakKeyMap<K: $($unsized)*, V> {
            /// By the address of the key's header, stable while the entry's weak
            /// handle keeps the header allocated.
            map: HashMap<usize, KeyEntry<K, V>>,
            dead: Queue<usize>,
            numbers: u64,
        }

        impl<K: $($obj)*, V> WeakKeyMap<K, V> {
            /// An empty map.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" let m: ", $root, "weakref::WeakKeyMap<u32, String> = ", $root, "weakref::WeakKeyMap::new();")]
            /// assert!(m.is_empty());
            /// ```
            pub fn new() -> Self {
                WeakKeyMap {
                    map: HashMap::new(),
                    dead: new_queue(),
                    numbers: 0,
                }
            }

            /// Removes the entries whose keys died; dropping their values may kill
            /// more keys: repeated until the queue stays empty.
            fn purge(&mut self) {
                loop {
                    let dead = core::mem::take(&mut *queue(&self.dead));
                    if dead.is_empty() {
                        return;
                    }
                    let mut gone = Vec::with_capacity(dead.len());
                    for (a, n) in dead {
                        if self.map.get(&a).is_some_and(|e| e.number == n) {
                            gone.push(self.map.remove(&a));
                        }
                    }
                    drop(gone);
                }
            }

            /// Maps the object `key` to `value`; returns the value it replaces.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let k = Gc::new(0);
            /// assert_eq!(m.insert(&k, 1), None);
            /// assert_eq!(m.insert(&k, 2), Some(1));
            /// ```
            pub fn insert(&mut self, key: &Gc<K>, value: V) -> Option<V> {
                self.purge();
                let addr = addr_of(key);
                if let Some(e) = self.map.get_mut(&addr) {
                    return Some(core::mem::replace(&mut e.value, value));
                }
                let number = next_number(&mut self.numbers);
                let dead = self.dead.clone();
                let hook = Registered::add(
                    key,
                    Box::new(move || queue(&dead).push((addr, number))),
                );
                if hook.is_some() {
                    let e = KeyEntry {
                        hook: HookGuard(hook),
                        key: Gc::downgrade(key),
                        value,
                        number,
                    };
                    self.map.insert(addr, e);
                }
                None
            }

            /// The value of the object `key`.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let k = Gc::new(0);
            /// m.insert(&k, "v");
            /// assert_eq!(m.get(&k), Some(&"v"));
            /// assert_eq!(m.get(&Gc::new(0)), None, "another object");
            /// ```
            pub fn get(&self, key: &Gc<K>) -> Option<&V> {
                // A live key's address cannot be a dead entry's: that entry's weak
                // handle keeps its header allocated.
                self.map.get(&addr_of(key)).map(|e| &e.value)
            }

            /// The value of the object `key`, mutably.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let k = Gc::new(0);
            /// m.insert(&k, 1);
            /// *m.get_mut(&k).unwrap() += 1;
            /// assert_eq!(m.get(&k), Some(&2));
            /// ```
            pub fn get_mut(&mut self, key: &Gc<K>) -> Option<&mut V> {
                self.map.get_mut(&addr_of(key)).map(|e| &mut e.value)
            }

            /// Whether the object `key` has an entry.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let k = Gc::new(0);
            /// m.insert(&k, ());
            /// assert!(m.contains_key(&k));
            /// ```
            pub fn contains_key(&self, key: &Gc<K>) -> bool {
                self.map.contains_key(&addr_of(key))
            }

            /// Removes the entry of the object `key` and returns its value.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let k = Gc::new(0);
            /// m.insert(&k, 5);
            /// assert_eq!(m.remove(&k), Some(5));
            /// assert_eq!(m.remove(&k), None);
            /// ```
            pub fn remove(&mut self, key: &Gc<K>) -> Option<V> {
                self.purge();
                let KeyEntry { hook, value, .. } = self.map.remove(&addr_of(key))?;
                drop(hook);
                Some(value)
            }

            /// The number of entries whose keys are alive (as
            /// [`WeakValueMap::len`] counts them).
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let (a, b) = (Gc::new(1), Gc::new(2));
            /// m.insert(&a, ());
            /// m.insert(&b, ());
            /// drop(b);
            /// assert_eq!(m.len(), 1);
            /// ```
            pub fn len(&self) -> usize {
                let dead = queue(&self.dead);
                let queued = dead
                    .iter()
                    .filter(|(a, n)| self.map.get(a).is_some_and(|e| e.number == *n))
                    .count();
                self.map.len() - queued
            }

            /// Whether no entry has a live key.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" let m = ", $root, "weakref::WeakKeyMap::<u8, u8>::default();")]
            /// assert!(m.is_empty());
            /// ```
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Removes every entry.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let k = Gc::new(1);
            /// m.insert(&k, 1);
            /// m.clear();
            /// assert!(m.is_empty());
            /// ```
            pub fn clear(&mut self) {
                let map = core::mem::take(&mut self.map);
                drop(map);
                queue(&self.dead).clear();
            }

            /// The live entries: a strong handle to each key (taken as the
            /// iteration reaches it) and its value.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakKeyMap};")]
            /// let mut m = WeakKeyMap::new();
            /// let (a, b) = (Gc::new("a"), Gc::new("b"));
            /// m.insert(&a, 1);
            /// m.insert(&b, 2);
            /// drop(a);
            /// let live: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
            /// assert_eq!(live, [("b", 2)]);
            /// ```
            pub fn iter(&self) -> impl Iterator<Item = (Gc<K>, &V)> + '_ {
                self.map
                    .values()
                    .filter_map(|e| Some((e.key.upgrade()?, &e.value)))
            }
        }

        impl<K: $($obj)*, V> Default for WeakKeyMap<K, V> {
            fn default() -> Self {
                WeakKeyMap::new()
            }
        }

        impl<K: fmt::Debug + $($unsized)*, V: fmt::Debug> fmt::Debug for WeakKeyMap<K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(
                        self.map
                            .values()
                            .filter_map(|e| Some((e.key.upgrade()?, &e.value))),
                    )
                    .finish()
            }
        }

        /// A set of objects held weakly, by identity (Python's `WeakSet`): an
        /// object leaves the set when it dies.
        ///
        /// # Examples
        ///
        /// ```
        /// # extern crate ouro_refobj as ouro;
        #[doc = concat!(" use ", $root, "{Gc, weakref::WeakSet};")]
        ///
        /// let mut live = WeakSet::new();
        /// let (a, b) = (Gc::new(1), Gc::new(2));
        /// assert!(live.insert(&a));
        /// assert!(!live.insert(&a), "already there");
        /// live.insert(&b);
        /// assert_eq!(live.len(), 2);
        /// drop(a);
        /// assert_eq!(live.len(), 1);
        /// assert!(live.contains(&b));
        /// ```
        pub struct WeakSet<T: $($unsized)*> {
            map: WeakKeyMap<T, ()>,
        }

        impl<T: $($obj)*> WeakSet<T> {
            /// An empty set.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" let s: ", $root, "weakref::WeakSet<u32> = ", $root, "weakref::WeakSet::new();")]
            /// assert!(s.is_empty());
            /// ```
            pub fn new() -> Self {
                WeakSet {
                    map: WeakKeyMap::new(),
                }
            }

            /// Adds the object; returns whether it was not in the set.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakSet};")]
            /// let mut s = WeakSet::new();
            /// let a = Gc::new(1);
            /// assert!(s.insert(&a));
            /// ```
            pub fn insert(&mut self, obj: &Gc<T>) -> bool {
                self.map.insert(obj, ()).is_none()
            }

            /// Whether the object is in the set.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakSet};")]
            /// let mut s = WeakSet::new();
            /// let a = Gc::new(1);
            /// s.insert(&a);
            /// assert!(s.contains(&a) && !s.contains(&Gc::new(1)));
            /// ```
            pub fn contains(&self, obj: &Gc<T>) -> bool {
                self.map.contains_key(obj)
            }

            /// Removes the object; returns whether it was in the set.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakSet};")]
            /// let mut s = WeakSet::new();
            /// let a = Gc::new(1);
            /// s.insert(&a);
            /// assert!(s.remove(&a));
            /// assert!(!s.remove(&a));
            /// ```
            pub fn remove(&mut self, obj: &Gc<T>) -> bool {
                self.map.remove(obj).is_some()
            }

            /// The number of live objects in the set.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakSet};")]
            /// let mut s = WeakSet::new();
            /// let a = Gc::new(1);
            /// s.insert(&a);
            /// assert_eq!(s.len(), 1);
            /// ```
            pub fn len(&self) -> usize {
                self.map.len()
            }

            /// Whether the set has no live object.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" assert!(", $root, "weakref::WeakSet::<u8>::default().is_empty());")]
            /// ```
            pub fn is_empty(&self) -> bool {
                self.map.is_empty()
            }

            /// Removes every object.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakSet};")]
            /// let mut s = WeakSet::new();
            /// let a = Gc::new(1);
            /// s.insert(&a);
            /// s.clear();
            /// assert!(s.is_empty());
            /// ```
            pub fn clear(&mut self) {
                self.map.clear()
            }

            /// Strong handles to the live objects.
            ///
            /// ```
            /// # extern crate ouro_refobj as ouro;
            #[doc = concat!(" use ", $root, "{Gc, weakref::WeakSet};")]
            /// let mut s = WeakSet::new();
            /// let a = Gc::new(1);
            /// s.insert(&a);
            /// assert_eq!(s.iter().map(|g| *g).sum::<i32>(), 1);
            /// ```
            pub fn iter(&self) -> impl Iterator<Item = Gc<T>> + '_ {
                self.map.iter().map(|(k, _)| k)
            }
        }

        impl<T: $($obj)*> Default for WeakSet<T> {
            fn default() -> Self {
                WeakSet::new()
            }
        }

        impl<T: fmt::Debug + $($unsized)*> fmt::Debug for WeakSet<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_set()
                    .entries(self.map.map.values().filter_map(|e| e.key.upgrade()))
                    .finish()
            }
        }
    };
}

pub(crate) use weak_collections;
