//! The unreachable-set pipeline, written once for both heaps: what happens
//! to the objects a collection found unreachable, after the heap's own
//! trial deletion (in place for the thread-local heap, verified and claimed
//! for the shared one) has found them and cleared their weak references.
//!
//! In order (CPython's `gc.c` since PEP 442):
//! 1. nothing found: nothing to do;
//! 2. if some object of the set has a finalizer that has not run yet, the
//!    values are made readable again (a finalizer sees every object of the
//!    cycle intact), every such finalizer runs once (the object is marked
//!    finalized first, so a later collection that finds it again does not
//!    run it again), and the set is checked again: if a finalizer made any
//!    of it reachable, all of it survives this time (its weak handles live
//!    on too);
//! 3. otherwise, under `DebugFlags::SAVEALL`, the set is kept (alive, one
//!    strong reference each, in `garbage()`) and counted as collected, as
//!    CPython counts it; an object of it whose count reached zero meanwhile
//!    (a finalizer let go of its last handle; on the shared heap, another
//!    thread did) is released by its count instead, never kept, as CPython
//!    frees such an object at once;
//! 4. otherwise the values are marked dead and dropped, which breaks the
//!    cycles, and the memory no handle holds any more is freed; the set is
//!    counted as collected.
//!
//! A heap describes its set with [`UnreachableSet`] (the decisions' inputs
//! and the steps that run no user code) and [`RunsUserCode`] (the
//! finalizers and the drops, each panic caught and the first kept, the
//! others still run). The thread-local heap runs it all in one go
//! ([`dispose`]). The shared heap runs the same parts with its collector
//! lock released around the user code (invariant I6): [`plan`] in the
//! critical part, then [`finish`] without the lock (automatic collections
//! hand that to the background thread), taking the lock again for
//! [`after_finalizers`] only (the re-check traces values and may give the
//! set back).

/// What is left to do with the unreachable set once the steps that run no
/// user code are done.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Rest {
    /// Nothing: the set was empty, saved, or revived.
    Nothing,
    /// Step 2: run the finalizers, then [`after_finalizers`].
    Finalize,
    /// Step 4's drops and frees (the set is marked dead and counted).
    Destroy,
}

/// One heap's unreachable set, under whatever protects it from the rest of
/// the program (the thread-local heap's `UNREACHABLE` marks; the shared
/// heap's claims, I4, and its collector lock). None of these run user code.
pub(crate) trait UnreachableSet {
    /// `DebugFlags::SAVEALL`, as read when the set was marked (the marking
    /// depends on it: saved values are not marked dead).
    fn saveall(&self) -> bool;
    /// Nothing was found.
    fn is_empty(&self) -> bool;
    /// Some object of the set has a finalizer that has not run yet.
    fn has_unfinalized(&self) -> bool;
    /// Before the finalizers: makes the values readable again where the
    /// marking made them dead.
    fn keep_values(&mut self);
    /// After the finalizers: whether they made any object of the set
    /// reachable again. A check that cannot finish (a `trace` panicked)
    /// says so too: nothing is freed on an unfinished check.
    fn resurrected(&mut self) -> bool;
    /// Gives the whole set back, alive, with its weak handles.
    fn revive(&mut self);
    /// `SAVEALL`: keeps the set in `garbage()` and counts it as collected.
    fn save(&mut self);
    /// Marks the values dead (where the marking did not already) and
    /// counts the set as collected; [`RunsUserCode::destroy`] follows.
    fn doom(&mut self);
}

/// The steps of the pipeline that run user code (finalizers, death hooks,
/// `Drop`s). Each panic is caught and the first one kept, for the heap to
/// resume when the collection is over; the rest of the set is still done.
pub(crate) trait RunsUserCode {
    /// Runs, once per object, the finalizers that have not run yet.
    fn finalize_each(&mut self);
    /// Drops the values of the (doomed) set and frees what no handle holds.
    fn destroy(&mut self);
}

/// Steps 1 to 4 as far as they go without user code: says what is left.
pub(crate) fn plan<S: UnreachableSet>(set: &mut S) -> Rest {
    if set.is_empty() {
        return Rest::Nothing;
    }
    if set.has_unfinalized() {
        set.keep_values();
        return Rest::Finalize;
    }
    settle(set)
}

/// Step 2's check once the finalizers ran, then step 3 or 4: says what is
/// left ([`Rest::Destroy`] or nothing).
pub(crate) fn after_finalizers<S: UnreachableSet>(set: &mut S) -> Rest {
    if set.resurrected() {
        set.revive();
        return Rest::Nothing;
    }
    settle(set)
}

/// Step 3 or 4 for a set that stays unreachable.
fn settle<S: UnreachableSet>(set: &mut S) -> Rest {
    if set.saveall() {
        set.save();
        Rest::Nothing
    } else {
        set.doom();
        Rest::Destroy
    }
}

/// The whole pipeline in one go, for a heap that may run user code where it
/// stands (the thread-local one).
pub(crate) fn dispose<S: UnreachableSet + RunsUserCode>(set: &mut S) {
    let rest = plan(set);
    finish(set, rest, after_finalizers);
}

/// The pipeline's steps after [`plan`], which run user code: the
/// finalizers, then `recheck` (which is [`after_finalizers`], called by a
/// heap that must take its lock again for it), then the drops.
pub(crate) fn finish<S: RunsUserCode>(
    set: &mut S,
    mut rest: Rest,
    recheck: impl FnOnce(&mut S) -> Rest,
) -> Rest {
    if rest == Rest::Finalize {
        set.finalize_each();
        rest = recheck(set);
    }
    if rest == Rest::Destroy {
        set.destroy();
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set that records the steps taken.
    #[derive(Default)]
    struct Model {
        saveall: bool,
        empty: bool,
        unfinalized: bool,
        resurrects: bool,
        steps: Vec<&'static str>,
    }

    impl UnreachableSet for Model {
        fn saveall(&self) -> bool {
            self.saveall
        }
        fn is_empty(&self) -> bool {
            self.empty
        }
        fn has_unfinalized(&self) -> bool {
            self.unfinalized
        }
        fn keep_values(&mut self) {
            self.steps.push("keep");
        }
        fn resurrected(&mut self) -> bool {
            self.steps.push("check");
            self.resurrects
        }
        fn revive(&mut self) {
            self.steps.push("revive");
        }
        fn save(&mut self) {
            self.steps.push("save");
        }
        fn doom(&mut self) {
            self.steps.push("doom");
        }
    }

    impl RunsUserCode for Model {
        fn finalize_each(&mut self) {
            self.steps.push("finalize");
        }
        fn destroy(&mut self) {
            self.steps.push("destroy");
        }
    }

    fn run(m: Model) -> Vec<&'static str> {
        let mut m = m;
        dispose(&mut m);
        m.steps
    }

    #[test]
    fn steps_in_order() {
        let empty = Model {
            empty: true,
            unfinalized: true,
            ..Model::default()
        };
        assert!(run(empty).is_empty());
        assert_eq!(run(Model::default()), ["doom", "destroy"]);
        let saved = Model {
            saveall: true,
            ..Model::default()
        };
        assert_eq!(run(saved), ["save"]);
        let finalized = Model {
            unfinalized: true,
            ..Model::default()
        };
        assert_eq!(
            run(finalized),
            ["keep", "finalize", "check", "doom", "destroy"]
        );
        let revived = Model {
            unfinalized: true,
            resurrects: true,
            saveall: true,
            ..Model::default()
        };
        assert_eq!(run(revived), ["keep", "finalize", "check", "revive"]);
        let finalized_saved = Model {
            unfinalized: true,
            saveall: true,
            ..Model::default()
        };
        assert_eq!(run(finalized_saved), ["keep", "finalize", "check", "save"]);
    }

    #[test]
    fn plan_stops_before_user_code() {
        let mut m = Model {
            unfinalized: true,
            ..Model::default()
        };
        assert_eq!(plan(&mut m), Rest::Finalize);
        assert_eq!(m.steps, ["keep"]);
        assert_eq!(after_finalizers(&mut m), Rest::Destroy);
        assert_eq!(m.steps, ["keep", "check", "doom"]);
    }
}
