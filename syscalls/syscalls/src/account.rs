//! Accounts: what each process has made the kernel hold, charged to the process that caused it
//! and to every ancestor, so that no process (or family of processes) can drain a kernel-wide
//! pool that its parent and everyone else share.
//!
//! # The scheme
//! 1. Every process has an [`Account`] with a limit per [`Resource`]; a charge counts against
//!    the account of the process that caused it *and every ancestor's* up to the first process
//!    (a process's usage includes its descendants'), and is refused with `ZX_ERR_NO_RESOURCES`
//!    if any of them would go over its limit (nothing is charged then).
//! 2. A new process's limits are half of what its creator has left at that moment (limit minus
//!    usage, per resource), so whatever a child and its descendants do, the creator keeps at
//!    least half of what it had.
//! 3. The first process's (a root account's) limits are below the kernel-wide pools by a
//!    reserve for the kernel, so no set of processes reaches a kernel-wide limit.
//!
//! What is charged to whom: a thread object to the process that created it (not the process
//! it runs in), a process to its creator, a handle to the process whose table holds it (it
//! stays charged to the writer while it sits in a channel message, and moves to the reader
//! with [`Account::transfer`], which only touches the accounts below the two processes'
//! closest common ancestor), message bytes to the writer until the message is read or dropped,
//! an exception message to the process that created the exception channel, the regions
//! (mappings + VMARs) of an address space to the process that owns it, whoever made them. Every charge is
//! released exactly once, when the object (or message) goes: [`Charge`] and the handle's own
//! charge release in `Drop`. Releasing never fails and never waits on a limit, so closing,
//! reading and killing always get through.
//!
//! Depth: a child's process budget is at most half its creator's, so chains of accounts are at
//! most `log2(root budget) + 1` long; walks up the chain (and the drop of a chain) are bounded.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use abi::Status;

/// What an account counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// Handles in tables and in queued messages (the kernel-wide handle arena).
    Handles = 0,
    /// Thread objects (each holds a kernel stack until it dies).
    Threads = 1,
    /// Bytes of queued channel messages.
    ChannelBytes = 2,
    /// Processes.
    Processes = 3,
    /// Mappings and VMARs of the process's address space (each holds kernel heap).
    Regions = 4,
}

/// Number of [`Resource`]s.
pub const RESOURCES: usize = 5;

/// Every resource, in index order.
pub const ALL_RESOURCES: [Resource; RESOURCES] = [
    Resource::Handles,
    Resource::Threads,
    Resource::ChannelBytes,
    Resource::Processes,
    Resource::Regions,
];

/// One process's account (see the module docs).
#[derive(Debug)]
pub struct Account {
    parent: Option<Arc<Account>>,
    depth: u32,
    limits: [usize; RESOURCES],
    usage: [AtomicUsize; RESOURCES],
}

impl Account {
    /// A root account (the first process, or a process the kernel creates) with `limits`.
    pub fn root(limits: [usize; RESOURCES]) -> Arc<Account> {
        Arc::new(Account {
            parent: None,
            depth: 0,
            limits,
            usage: Default::default(),
        })
    }

    /// The account of a process `parent`'s owner creates: each limit is half of what `parent`
    /// has left now.
    pub fn child(parent: &Arc<Account>) -> Arc<Account> {
        let limits = ALL_RESOURCES.map(|r| parent.remaining(r) / 2);
        Arc::new(Account {
            parent: Some(parent.clone()),
            depth: parent.depth + 1,
            limits,
            usage: Default::default(),
        })
    }

    /// The limit for `r`.
    pub fn limit(&self, r: Resource) -> usize {
        self.limits[r as usize]
    }

    /// What is charged for `r` here and below.
    pub fn usage(&self, r: Resource) -> usize {
        self.usage[r as usize].load(Ordering::SeqCst)
    }

    /// The limit less the usage for `r` (0 when over it, which only a transfer can cause).
    pub fn remaining(&self, r: Resource) -> usize {
        self.limit(r).saturating_sub(self.usage(r))
    }

    /// How many accounts are above this one.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Adds `n` of `r` to this account and its ancestors below `stop` (all of them for
    /// `None`), or to none of them if one would go over its limit.
    fn add_below(&self, stop: Option<&Account>, r: Resource, n: usize) -> Result<(), Status> {
        let mut level = Some(self);
        while let Some(a) = level {
            if stop.is_some_and(|s| core::ptr::eq(a, s)) {
                break;
            }
            let slot = &a.usage[r as usize];
            let before = slot.fetch_add(n, Ordering::SeqCst);
            if before
                .checked_add(n)
                .is_none_or(|after| after > a.limits[r as usize])
            {
                slot.fetch_sub(n, Ordering::SeqCst);
                // Undo the levels below this one.
                self.sub_below(Some(a), r, n);
                return Err(Status::ERR_NO_RESOURCES);
            }
            level = a.parent.as_deref();
        }
        Ok(())
    }

    /// Takes `n` of `r` off this account and its ancestors below `stop`.
    fn sub_below(&self, stop: Option<&Account>, r: Resource, n: usize) {
        let mut level = Some(self);
        while let Some(a) = level {
            if stop.is_some_and(|s| core::ptr::eq(a, s)) {
                break;
            }
            a.usage[r as usize].fetch_sub(n, Ordering::SeqCst);
            level = a.parent.as_deref();
        }
    }

    /// Charges `n` of `r` here and to every ancestor: `ZX_ERR_NO_RESOURCES` (nothing charged)
    /// if one would go over its limit. The charge is released when the [`Charge`] drops.
    pub fn charge(self: &Arc<Self>, r: Resource, n: usize) -> Result<Charge, Status> {
        self.add_below(None, r, n)?;
        Ok(Charge {
            account: self.clone(),
            resource: r,
            amount: n,
        })
    }

    /// Releases `n` of `r` charged here (and to every ancestor) by [`Account::add`].
    pub fn release(&self, r: Resource, n: usize) {
        self.sub_below(None, r, n);
    }

    /// Charges `n` of `r` here and to every ancestor without a [`Charge`] (for holders that
    /// keep the account themselves, such as a handle); release with [`Account::release`].
    pub fn add(&self, r: Resource, n: usize) -> Result<(), Status> {
        self.add_below(None, r, n)
    }

    /// The closest account that is `a` or an ancestor of `a` and also `b` or an ancestor of
    /// `b`; `None` when they have different roots.
    fn common_ancestor<'a>(a: &'a Account, b: &'a Account) -> Option<&'a Account> {
        let (mut a, mut b) = (Some(a), Some(b));
        while let (Some(x), Some(y)) = (a, b) {
            if core::ptr::eq(x, y) {
                return Some(x);
            }
            if x.depth >= y.depth {
                a = x.parent.as_deref();
            }
            if y.depth >= x.depth {
                b = y.parent.as_deref();
            }
        }
        None
    }

    /// Moves a charge of `n` of `r` from `from` (`None`: not charged yet) to `to`: the accounts
    /// from `to` up to the closest common ancestor (exclusive) are charged, checked against
    /// their limits (`ZX_ERR_NO_RESOURCES`, nothing moved), then the ones from `from` up to it
    /// released. The common ancestor and those above it keep their usage, so a move towards an
    /// ancestor (a parent reading what its child wrote) is never refused.
    pub fn transfer(
        from: Option<&Arc<Account>>,
        to: &Arc<Account>,
        r: Resource,
        n: usize,
    ) -> Result<(), Status> {
        let common = from.and_then(|f| Self::common_ancestor(f, to));
        to.add_below(common, r, n)?;
        if let Some(f) = from {
            f.sub_below(common, r, n);
        }
        Ok(())
    }
}

/// A charge of some amount of one resource; released (from the account and every ancestor)
/// when dropped.
#[derive(Debug)]
pub struct Charge {
    account: Arc<Account>,
    resource: Resource,
    amount: usize,
}

impl Charge {
    /// The account charged.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// How much is charged.
    pub fn amount(&self) -> usize {
        self.amount
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.account.release(self.resource, self.amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Resource::*;

    fn root(n: usize) -> Arc<Account> {
        Account::root([n; RESOURCES])
    }

    #[test]
    fn charges_count_against_every_ancestor_and_release_exactly() {
        let r = root(100);
        let c = Account::child(&r);
        let g = Account::child(&c);
        assert_eq!((c.limit(Threads), g.limit(Threads)), (50, 25));
        let a = g.charge(Threads, 10).unwrap();
        assert_eq!(
            (g.usage(Threads), c.usage(Threads), r.usage(Threads)),
            (10, 10, 10)
        );
        let b = c.charge(Threads, 5).unwrap();
        assert_eq!((c.usage(Threads), r.usage(Threads)), (15, 15));
        drop(a);
        assert_eq!(
            (g.usage(Threads), c.usage(Threads), r.usage(Threads)),
            (0, 5, 5)
        );
        drop(b);
        for acc in [&r, &c, &g] {
            for res in ALL_RESOURCES {
                assert_eq!(acc.usage(res), 0);
            }
        }
    }

    #[test]
    fn a_refused_charge_changes_nothing() {
        let r = root(100);
        let c = Account::child(&r);
        let g = Account::child(&c);
        // The grandchild's own limit (25).
        let held = g.charge(Handles, 25).unwrap();
        assert_eq!(g.charge(Handles, 1).err(), Some(Status::ERR_NO_RESOURCES));
        assert_eq!(
            (g.usage(Handles), c.usage(Handles), r.usage(Handles)),
            (25, 25, 25)
        );
        // An ancestor's limit: the child has 25 left for itself, the grandchild none.
        let own = c.charge(Handles, 25).unwrap();
        assert_eq!(c.charge(Handles, 1).err(), Some(Status::ERR_NO_RESOURCES));
        drop(held);
        // The root's limit refuses the grandchild though its own account has room.
        let root_own = r.charge(Handles, 75).unwrap();
        assert_eq!(g.charge(Handles, 1).err(), Some(Status::ERR_NO_RESOURCES));
        assert_eq!(
            (g.usage(Handles), c.usage(Handles), r.usage(Handles)),
            (0, 25, 100)
        );
        drop((own, root_own));
        assert_eq!(r.usage(Handles), 0);
        // Overflowing amounts are refused, not wrapped.
        assert!(r.charge(Handles, usize::MAX).is_err());
        assert_eq!(r.usage(Handles), 0);
    }

    /// The reproduction in accounting terms: a child that drives one resource as far as
    /// it can, through any number of grandchildren, leaves its creator half of what it had.
    #[test]
    fn a_greedy_family_leaves_the_creator_half() {
        let r = root(448);
        let _mine = r.charge(Threads, 8).unwrap();
        let victim = Account::child(&r);
        assert_eq!(victim.limit(Threads), 220);
        // A grandchild (the victim's own child) takes what it can, then the victim the rest.
        let grandchild = Account::child(&victim);
        let mut held = Vec::new();
        while let Ok(c) = grandchild.charge(Threads, 1) {
            held.push(c);
        }
        assert_eq!(held.len(), 110);
        let e = loop {
            match victim.charge(Threads, 1) {
                Ok(c) => held.push(c),
                Err(e) => break e,
            }
        };
        assert_eq!(e, Status::ERR_NO_RESOURCES);
        assert_eq!(victim.usage(Threads), 220);
        assert_eq!(r.remaining(Threads), 448 - 8 - 220);
        // The creator can still charge what it has left.
        let rest = r.charge(Threads, r.remaining(Threads)).unwrap();
        drop((held, grandchild, rest));
        assert_eq!(r.usage(Threads), 8);
    }

    #[test]
    fn transfers_touch_only_the_accounts_below_the_common_ancestor() {
        let r = root(1000);
        let parent = Account::child(&r); // limit 500
        let a = Account::child(&parent); // 250
        let b = Account::child(&parent); // 250 (parent has 500 left: nothing used yet)
        a.add(Handles, 10).unwrap();
        // a -> b: a's side released, b's side charged, parent and root unchanged.
        Account::transfer(Some(&a), &b, Handles, 10).unwrap();
        assert_eq!(
            (
                a.usage(Handles),
                b.usage(Handles),
                parent.usage(Handles),
                r.usage(Handles)
            ),
            (0, 10, 10, 10)
        );
        // Towards an ancestor: never refused, even when the ancestor is at its limit.
        let fill = parent.charge(Handles, parent.remaining(Handles)).unwrap();
        Account::transfer(Some(&b), &parent, Handles, 10).unwrap();
        assert_eq!((b.usage(Handles), parent.usage(Handles)), (0, 500));
        // Towards a descendant at its limit: refused, nothing moved.
        let b_full = Account::child(&r);
        let held = b_full.charge(Handles, b_full.limit(Handles)).unwrap();
        Account::transfer(Some(&parent), &b_full, Handles, 10).unwrap_err();
        assert_eq!(parent.usage(Handles), 500);
        drop((fill, held));
        parent.release(Handles, 10);
        assert_eq!(r.usage(Handles), 0);
        // From nothing (a new handle): a plain charge.
        Account::transfer(None, &a, Handles, 3).unwrap();
        assert_eq!((a.usage(Handles), r.usage(Handles)), (3, 3));
        a.release(Handles, 3);
        // Between different roots: everything on both sides moves.
        let other = root(10);
        other.add(Threads, 2).unwrap();
        Account::transfer(Some(&other), &a, Threads, 2).unwrap();
        assert_eq!(
            (other.usage(Threads), a.usage(Threads), r.usage(Threads)),
            (0, 2, 2)
        );
        a.release(Threads, 2);
    }

    #[test]
    fn chains_are_short() {
        let r = root(1024);
        let mut chain = vec![r.clone()];
        while chain.last().unwrap().limit(Processes) > 0 {
            let next = Account::child(chain.last().unwrap());
            chain.push(next);
        }
        assert!(chain.len() <= 12, "{} accounts deep", chain.len());
    }
}
