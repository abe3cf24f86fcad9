//! The `gc` functions whose meaning, documentation and examples are the
//! same on both heaps, written once: [`gc_functions!`] defines them in
//! `ouro::gc` and in `ouro::sync::gc`, each calling its heap's `control`
//! function. The examples run on each heap (doctests run in a process of
//! their own, so the process-wide heap holds only the example's objects).
//! What differs between the heaps (`collect`, `get_count`, callbacks,
//! introspection) stays in each module.

/// Defines the shared `gc` functions in the calling module, which has
/// `control`, `DebugFlags`, `GenerationStats` and `CallbackId` in scope.
///
/// - `prelude`: the first lines of each example (imports, and a `Node`
///   type with a `next` field in a cell),
/// - `empty`: an empty such cell (`RefCell::new(None)`),
/// - `link`: how an example reaches into that cell (`borrow_mut()`),
/// - `heap`: the heap the functions act on, in prose.
macro_rules! gc_functions {
    (
        prelude: $prelude:literal,
        empty: $empty:literal,
        link: $link:literal,
        heap: $heap:literal $(,)?
    ) => {
        /// Collects generation `generation` and all younger ones (Python's
        /// `gc.collect(generation)`), as [`collect`] does; returns the
        /// number of unreachable objects found.
        ///
        /// # Panics
        /// If `generation > 2`; and as [`collect`] for panics from user code.
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "gc::disable();\n",
            "let a = Gc::new(Node { next: ", $empty, " });\n",
            "*a.next.", $link, " = Some(a.clone());\n",
            "drop(a);\n",
            "assert_eq!(gc::collect_generation(0), 1); // it was young\n",
            "gc::enable();\n",
            "```",
        )]
        #[inline]
        pub fn collect_generation(generation: usize) -> usize {
            control::collect_generation(generation)
        }

        #[doc = concat!("Turns automatic collection of ", $heap, " on.")]
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "gc::disable();\n",
            "gc::enable();\n",
            "assert!(gc::is_enabled());\n",
            "```",
        )]
        #[inline]
        pub fn enable() {
            control::enable()
        }

        #[doc = concat!(
            "Turns automatic collection of ", $heap, " off; explicit [`collect`] still works."
        )]
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "gc::disable();\n",
            "for _ in 0..10_000 {\n",
            "    let a = Gc::new(Node { next: ", $empty, " });\n",
            "    *a.next.", $link, " = Some(a.clone());\n",
            "} // 10,000 cycles, and no automatic collection ran\n",
            "assert_eq!(gc::collect(), 10_000);\n",
            "gc::enable();\n",
            "```",
        )]
        #[inline]
        pub fn disable() {
            control::disable()
        }

        /// Whether automatic collection is on.
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "assert!(gc::is_enabled()); // on by default\n",
            "gc::disable();\n",
            "assert!(!gc::is_enabled());\n",
            "gc::enable();\n",
            "```",
        )]
        #[inline]
        pub fn is_enabled() -> bool {
            control::is_enabled()
        }

        /// The collection thresholds (default `[700, 10, 10]`).
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "assert_eq!(gc::get_threshold(), [700, 10, 10]); // CPython's defaults\n",
            "```",
        )]
        #[inline]
        pub fn get_threshold() -> [usize; 3] {
            control::get_threshold()
        }

        /// Sets the collection thresholds. A `threshold0` of 0 disables
        /// automatic collection, as in Python; the young threshold in force
        /// starts again from `threshold0` (see [`crate::gc`]'s module docs
        /// for how it backs off).
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "gc::set_threshold([10_000, 10, 10]); // fewer, larger young collections\n",
            "assert_eq!(gc::get_threshold(), [10_000, 10, 10]);\n",
            "gc::set_threshold([700, 10, 10]);\n",
            "```",
        )]
        #[inline]
        pub fn set_threshold(thresholds: [usize; 3]) {
            control::set_threshold(thresholds)
        }

        #[doc = concat!(
            "Statistics per generation of ", $heap, " since it was made: `collections`; ",
            "`collected`, the objects freed and the unreachable ones kept by ",
            "`SAVEALL` (as CPython counts them); `uncollectable`, those that only ",
            "non-structural `Trace` impls keep alive (see ",
            "[`GenerationStats::uncollectable`])."
        )]
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "let before = gc::get_stats()[2].collected;\n",
            "let a = Gc::new(Node { next: ", $empty, " });\n",
            "*a.next.", $link, " = Some(a.clone());\n",
            "drop(a);\n",
            "gc::collect();\n",
            "assert_eq!(gc::get_stats()[2].collected, before + 1);\n",
            "```",
        )]
        #[inline]
        pub fn get_stats() -> [GenerationStats; 3] {
            control::get_stats()
        }

        /// Moves every tracked object to the permanent generation: frozen
        /// objects are never scanned until [`unfreeze`] (CPython's answer
        /// to copy-on-write after `fork`, and a way to make collections
        /// skip a large long-lived heap).
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "let config = Gc::new(Node { next: ", $empty, " });\n",
            "gc::freeze(); // collections no longer scan `config`\n",
            "assert_eq!(gc::get_freeze_count(), 1);\n",
            "gc::unfreeze();\n",
            "# drop(config);\n",
            "```",
        )]
        #[inline]
        pub fn freeze() {
            control::freeze()
        }

        /// Moves the frozen objects back into the oldest generation.
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "let a = Gc::new(Node { next: ", $empty, " });\n",
            "gc::freeze();\n",
            "gc::unfreeze(); // back in the oldest generation\n",
            "assert_eq!(gc::get_freeze_count(), 0);\n",
            "assert_eq!(gc::get_objects(Some(2)).len(), 1);\n",
            "# drop(a);\n",
            "```",
        )]
        #[inline]
        pub fn unfreeze() {
            control::unfreeze()
        }

        /// Number of frozen objects.
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "assert_eq!(gc::get_freeze_count(), 0);\n",
            "let a = Gc::new(Node { next: ", $empty, " });\n",
            "gc::freeze();\n",
            "assert_eq!(gc::get_freeze_count(), 1);\n",
            "gc::unfreeze();\n",
            "# drop(a);\n",
            "```",
        )]
        #[inline]
        pub fn get_freeze_count() -> usize {
            control::get_freeze_count()
        }

        /// Sets the debugging flags (see `DebugFlags::STATS` for where its
        /// lines go).
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "use gc::DebugFlags;\n",
            "// Keep what collections find, for inspection with gc::garbage().\n",
            "gc::set_debug(DebugFlags::SAVEALL);\n",
            "assert!(gc::get_debug().contains(DebugFlags::SAVEALL));\n",
            "gc::set_debug(DebugFlags::empty());\n",
            "```",
        )]
        #[inline]
        pub fn set_debug(flags: DebugFlags) {
            control::set_debug(flags)
        }

        /// The debugging flags.
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "assert!(gc::get_debug().is_empty()); // no flags by default\n",
            "```",
        )]
        #[inline]
        pub fn get_debug() -> DebugFlags {
            control::get_debug()
        }

        /// Unregisters a callback; `false` if it was not registered.
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "let id = gc::add_callback(|_| {});\n",
            "assert!(gc::remove_callback(id));\n",
            "assert!(!gc::remove_callback(id)); // already gone\n",
            "```",
        )]
        #[inline]
        pub fn remove_callback(id: CallbackId) -> bool {
            control::remove_callback(id)
        }

        /// Releases the objects kept by `DebugFlags::SAVEALL`. Those still
        /// in cycles are freed by the next collection (if `SAVEALL` is off
        /// by then).
        ///
        /// # Examples
        ///
        #[doc = concat!(
            "```\n", $prelude, "\n",
            "gc::set_debug(gc::DebugFlags::SAVEALL);\n",
            "let a = Gc::new(Node { next: ", $empty, " });\n",
            "*a.next.", $link, " = Some(a.clone());\n",
            "drop(a);\n",
            "gc::collect();\n",
            "assert_eq!(gc::garbage().len(), 1); // kept for inspection\n",
            "gc::set_debug(gc::DebugFlags::empty());\n",
            "gc::clear_garbage();\n",
            "assert!(gc::garbage().is_empty());\n",
            "gc::collect(); // now it is freed\n",
            "```",
        )]
        #[inline]
        pub fn clear_garbage() {
            control::clear_garbage()
        }
    };
}

pub(crate) use gc_functions;
