//! The checker: locks taken in rank order pass, an inversion or a second lock of one class
//! panics naming both, and releases in any order keep the record exact.

use lock_order::{held, Class, OrderedMutex};

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("no panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn the_table_is_ranked_strictly() {
    for pair in Class::ALL.windows(2) {
        assert!(
            pair[0].rank() < pair[1].rank(),
            "{:?} and {:?} are not in rank order",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn taking_locks_in_rank_order_passes() {
    let tree = OrderedMutex::new(Class::AspaceTree, 1);
    let vmo = OrderedMutex::new(Class::Vmo, 2);
    let mmu = OrderedMutex::new(Class::AspaceMmu, 3);
    let t = tree.lock();
    let v = vmo.lock();
    let m = mmu.lock();
    assert_eq!(*t + *v + *m, 6);
    assert_eq!(held().len(), 3);
    drop((t, v, m));
    assert!(held().is_empty());
}

#[test]
fn an_inversion_panics_naming_both_locks() {
    let msg = panic_message(|| {
        let vmo = OrderedMutex::new(Class::Vmo, ());
        let tree = OrderedMutex::new(Class::AspaceTree, ());
        let _v = vmo.lock();
        let _t = tree.lock();
    });
    assert!(
        msg.contains("taking AspaceTree") && msg.contains("holding Vmo"),
        "the inversion was not reported with both names: {msg:?}"
    );
    // The guard taken before the panic was released while unwinding.
    assert!(held().is_empty());
}

#[test]
fn two_locks_of_one_class_panic() {
    let msg = panic_message(|| {
        let a = OrderedMutex::new(Class::Vmo, ());
        let b = OrderedMutex::new(Class::Vmo, ());
        let _a = a.lock();
        let _b = b.lock();
    });
    assert!(
        msg.contains("taking Vmo") && msg.contains("holding Vmo"),
        "two VMO locks at once were not reported: {msg:?}"
    );
}

#[test]
fn releases_in_any_order_keep_the_record_exact() {
    let tree = OrderedMutex::new(Class::AspaceTree, ());
    let vmo = OrderedMutex::new(Class::Vmo, ());
    let mmu = OrderedMutex::new(Class::AspaceMmu, ());
    let t = tree.lock();
    let v = vmo.lock();
    drop(t);
    // Only the VMO lock is held: the MMU ranks above it.
    let m = mmu.lock();
    drop(v);
    assert_eq!(held().highest(), Some(Class::AspaceMmu));
    drop(m);
    // And a tree lock may be taken again.
    let _t = tree.lock();
    assert_eq!(held().len(), 1);
}

#[test]
fn try_lock_checks_the_order_and_fails_on_a_held_lock() {
    let vmo = OrderedMutex::new(Class::Vmo, ());
    let guard = vmo.try_lock().expect("a free lock");
    assert!(vmo.try_lock().is_none(), "a held lock was taken again");
    let tree = OrderedMutex::new(Class::AspaceTree, ());
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        let _t = tree.try_lock();
    }));
    assert!(
        msg.contains("taking AspaceTree") && msg.contains("holding Vmo"),
        "try_lock skipped the order check: {msg:?}"
    );
    drop(guard);
    assert!(held().is_empty());
}
