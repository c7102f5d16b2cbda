//! Memory attribution of a VMO (Zircon's `GetAttributedMemory`): the committed pages it can
//! see, those only it can see, and each page's bytes divided among the VMOs holding the page.
//!
//! A frame's holders are counted by the frame allocator ([`PhysMem::holders`]): every VMO of a
//! clone family whose page list holds the frame. A slice holds no frame: its window's pages are
//! attributed to its root, so a slice reports them in `bytes` only (as Zircon attributes
//! nothing to a reference onto another VMO's pages), which keeps the sum of the scaled bytes
//! over all VMOs equal to the frames their pages use.
//!
//! A VMO outside any clone family holds each of its frames alone: its attribution is its
//! committed count, read from the run counts. Otherwise the walk takes the VMO lock for at most
//! [`ATTRIBUTION_STEP`] committed pages at a time and calls the caller's preemption point between
//! two holds, so a VMO holding most of memory never
//! keeps its lock (and, in the kernel, interrupts off) for more than one step. Pages committed or
//! forked between two steps may be counted in their new state or their old one, as in Zircon,
//! whose attribution query is not atomic with other VMO operations either.

use abi::info::ScaledBytes;

use super::*;

/// Committed pages looked at per hold of the VMO lock.
pub const ATTRIBUTION_STEP: usize = 256;

/// What a VMO's committed pages weigh (all three in bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Every committed page the VMO can see, shared or not (RSS: Zircon's `committed_bytes`).
    pub bytes: u64,
    /// The committed pages no other VMO holds (USS: `committed_private_bytes`).
    pub private_bytes: u64,
    /// Each committed page's bytes divided by the number of VMOs holding it (PSS:
    /// `committed_scaled_bytes` and its fraction).
    pub scaled: ScaledBytes,
}

impl Attribution {
    /// Adds one committed page held by `holders` VMOs (this one included).
    fn add_page(&mut self, holders: usize) {
        self.bytes = self.bytes.saturating_add(PAGE);
        if holders <= 1 {
            self.private_bytes = self.private_bytes.saturating_add(PAGE);
        }
        self.scaled = self.scaled + ScaledBytes::share_of(PAGE, holders as u64);
    }
}

impl Vmo {
    /// The attribution of the whole VMO (see [`Vmo::attribution_in`]).
    pub fn attribution(&self, preempt: &mut dyn FnMut()) -> Attribution {
        self.attribution_in(0, u64::MAX, preempt)
    }

    /// The attribution of page indices `[first_page, end_page)`: at most [`ATTRIBUTION_STEP`]
    /// committed pages per hold of the VMO lock, `preempt` called with no lock held between two
    /// holds. A slice reports its window's committed pages in `bytes` and nothing else (the
    /// pages belong to its root).
    pub fn attribution_in(
        &self,
        first_page: u64,
        end_page: u64,
        preempt: &mut dyn FnMut(),
    ) -> Attribution {
        if self.slice.is_some() {
            let end = end_page.min(self.page_count());
            let pages = self.committed_pages_in(first_page, end) as u64;
            return Attribution {
                bytes: pages.saturating_mul(PAGE),
                ..Attribution::default()
            };
        }
        if !self.may_share() {
            // Outside any clone family every frame has this VMO as its only holder: the range's
            // committed count (from the run counts, O(log n + COUNT_RUN)) is the whole answer.
            let bytes = (self.committed_pages_in(first_page, end_page) as u64).saturating_mul(PAGE);
            return Attribution {
                bytes,
                private_bytes: bytes,
                scaled: ScaledBytes {
                    integral: bytes,
                    fractional: 0,
                },
            };
        }
        let mut total = Attribution::default();
        let mut from = first_page;
        while from < end_page {
            let resume = {
                let inner = self.inner.lock();
                let mut walk = inner.pages.range(from..end_page);
                let mut resume = None;
                for taken in 0..=ATTRIBUTION_STEP {
                    let Some((&index, &frame)) = walk.next() else {
                        break;
                    };
                    if taken == ATTRIBUTION_STEP {
                        resume = Some(index);
                        break;
                    }
                    total.add_page(self.phys.holders(frame));
                }
                resume
            };
            match resume {
                Some(index) => {
                    from = index;
                    preempt();
                }
                None => break,
            }
        }
        total
    }
}
