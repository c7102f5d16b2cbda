//! Region budgets (`AddressSpace::set_region_budget`): what an address space has charged is
//! what it holds after every operation, an operation that would go over the budget is refused
//! with `ERR_NO_MEMORY` and changes nothing, and dropping the space releases everything.
mod common;
use abi::vm_options::ZX_VM_PERM_READ;
use abi::Status;
use common::*;
use std::sync::{Arc, Mutex};
use vm::RegionBudget;

/// A budget of `limit` regions that records what is charged.
struct Budget {
    limit: usize,
    used: Mutex<usize>,
}

impl RegionBudget for Budget {
    fn charge(&self, n: usize) -> bool {
        let mut used = self.used.lock().unwrap();
        if *used + n > self.limit {
            return false;
        }
        *used += n;
        true
    }

    fn release(&self, n: usize) {
        let mut used = self.used.lock().unwrap();
        *used = used.checked_sub(n).expect("released more than was charged");
    }
}

fn budget(limit: usize) -> Arc<Budget> {
    Arc::new(Budget {
        limit,
        used: Mutex::new(0),
    })
}

/// Regions held: the VMARs (root included) and the mappings.
fn held(f: &Fixture) -> usize {
    f.vmars().len() + f.mappings().len()
}

#[test]
fn the_charge_follows_what_the_space_holds_and_the_limit_refuses_only_growth() {
    let f = Fixture::new();
    let b = budget(8);
    f.aspace.set_region_budget(b.clone());
    let vmo = f.vmo(4);
    let (sub, _) = f.sub(16);
    assert_eq!(*b.used.lock().unwrap(), 2, "root + sub");
    let a = f.map_at(&sub, 0, &vmo, 4);
    assert_eq!(*b.used.lock().unwrap(), held(&f));
    // A protect of the middle page cuts the mapping in three: two regions more.
    sub.protect(ZX_VM_PERM_READ, a + PAGE, PAGE, VMAR_RIGHTS)
        .unwrap();
    assert_eq!((held(&f), *b.used.lock().unwrap()), (5, 5));
    // And back: the merge gives them back.
    sub.protect(RW, a + PAGE, PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!((held(&f), *b.used.lock().unwrap()), (3, 3));
    // Fill up to the limit, then growth is refused with nothing changed.
    let mut maps = Vec::new();
    while let Ok(m) = f.root.map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS) {
        maps.push(m);
    }
    assert_eq!((held(&f), *b.used.lock().unwrap()), (8, 8));
    let before = f.mappings();
    assert_eq!(
        f.root.map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS),
        Err(Status::ERR_NO_MEMORY)
    );
    assert_eq!(
        sub.protect(ZX_VM_PERM_READ, a + PAGE, PAGE, VMAR_RIGHTS),
        Err(Status::ERR_NO_MEMORY),
        "a cut adds regions"
    );
    assert_eq!(f.mappings(), before);
    // What lowers usage always goes through, and gives the charge back.
    f.root.unmap(maps[0], PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!((held(&f), *b.used.lock().unwrap()), (7, 7));
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!((held(&f), *b.used.lock().unwrap()), (5, 5));
    f.check();
    drop(sub);
    drop(f);
    assert_eq!(
        *b.used.lock().unwrap(),
        0,
        "dropping the space releases its charge"
    );
}

#[test]
fn a_new_budget_takes_over_the_charge() {
    let f = Fixture::new();
    let first = budget(100);
    f.aspace.set_region_budget(first.clone());
    let vmo = f.vmo(1);
    f.root
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(*first.used.lock().unwrap(), 2);
    let second = budget(100);
    f.aspace.set_region_budget(second.clone());
    assert_eq!(*first.used.lock().unwrap(), 0);
    f.root
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(*second.used.lock().unwrap(), 3);
    assert_eq!(f.aspace.settle_regions(), 3);
    assert_eq!(f.aspace.charged_regions(), 3);
}
