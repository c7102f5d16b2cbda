//! In-kernel tests of this crate (run by the kernel's ktest runner).

use crate::extable::{self, CopyError};
use ktest::{ensure, ensure_eq, ktest};

/// An address in user space with nothing mapped (no user address space exists yet).
const UNMAPPED_USER: u64 = 0x0000_7fff_dead_0000;

ktest! {
    fn breakpoint_returns() {
        let before = crate::trap::breakpoint_count();
        crate::cpu::breakpoint();
        crate::cpu::breakpoint();
        ensure_eq!(crate::trap::breakpoint_count(), before + 2);
        Ok(())
    }
}

ktest! {
    fn extable_is_linked() {
        // The table holds exactly the copy routine's pair: its `rep movsb` (F3 A4) and a fixup
        // after it, both inside `arch_copy_fallible`.
        let (pairs, (start, end)) = extable::pairs_and_copy_routine();
        ensure_eq!(pairs.len(), 1);
        ensure_eq!(extable::len(), 1);
        let (insn, fixup) = pairs[0];
        ensure!(start <= insn && insn < fixup && fixup < end, "{insn:#x} -> {fixup:#x} in [{start:#x}, {end:#x})");
        // SAFETY: `insn` lies inside the routine's code (checked above), which is mapped
        // readable for the kernel's lifetime.
        let bytes = unsafe { core::ptr::read_unaligned(insn as *const [u8; 2]) };
        ensure_eq!(bytes, [0xf3, 0xa4]);
        ensure_eq!(extable::fixup_for(insn), Some(fixup));
        Ok(())
    }
}

ktest! {
    fn copy_from_unmapped_user_page_faults_cleanly() {
        let mut buf = [0xAAu8; 64];
        let r = extable::copy_from_user(&mut buf, UNMAPPED_USER);
        ensure_eq!(r, Err(CopyError::Fault { remaining: 64 }));
        ensure!(buf.iter().all(|&b| b == 0xAA), "destination was modified");
        // The kernel is still alive and can do it again.
        let r = extable::copy_from_user(&mut buf[..1], UNMAPPED_USER + 4096);
        ensure_eq!(r, Err(CopyError::Fault { remaining: 1 }));
        Ok(())
    }
}

ktest! {
    fn copy_to_unmapped_user_page_faults_cleanly() {
        let r = extable::copy_to_user(UNMAPPED_USER, b"hello");
        ensure_eq!(r, Err(CopyError::Fault { remaining: 5 }));
        Ok(())
    }
}

ktest! {
    fn copy_rejects_kernel_addresses() {
        let mut buf = [0u8; 8];
        let kernel = &buf as *const _ as u64;
        ensure_eq!(extable::copy_from_user(&mut buf, kernel), Err(CopyError::NotUser));
        ensure_eq!(extable::copy_to_user(extable::USER_END - 4, &[0; 8]), Err(CopyError::NotUser));
        ensure_eq!(extable::copy_to_user(u64::MAX, &[0; 2]), Err(CopyError::NotUser));
        Ok(())
    }
}

ktest! {
    fn copy_fallible_copies_mapped_memory() {
        let src = *b"fault-safe copy!";
        let mut dst = [0u8; 16];
        // SAFETY: both are live, non-overlapping local arrays of 16 bytes.
        let r = unsafe { extable::copy_fallible(dst.as_mut_ptr(), src.as_ptr(), 16) };
        ensure_eq!(r, Ok(()));
        ensure_eq!(dst, src);
        Ok(())
    }
}
