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
        // The table holds exactly the pairs of the two copy routines (`arch_copy_fallible` and
        // `arch_copy_nohook`), seventeen each, all inside their routine: its `rep movsb` (F3
        // A4) with its own fixup, and the block loop's eight loads and eight stores, which all
        // resume at one fixup: the `rep movsb` path, before that instruction.
        let (pairs, routines) = extable::pairs_and_copy_routines();
        ensure_eq!(pairs.len(), 34);
        ensure_eq!(extable::len(), 34);
        // SAFETY: every `insn` checked below lies inside a copy routine's code, which is mapped
        // readable for the kernel's lifetime.
        let code = |a: u64| unsafe { core::ptr::read_unaligned(a as *const [u8; 2]) };
        for (start, end) in routines {
            let inside = |a: u64| start <= a && a < end;
            let mine: alloc::vec::Vec<(u64, u64)> = pairs.iter().copied().filter(|&(i, _)| inside(i)).collect();
            ensure_eq!(mine.len(), 17);
            ensure!(mine.iter().all(|&(_, f)| inside(f)), "{mine:x?} not in [{start:#x}, {end:#x})");
            let reps: alloc::vec::Vec<_> = mine.iter().filter(|&&(i, _)| code(i) == [0xf3, 0xa4]).collect();
            ensure_eq!(reps.len(), 1);
            let &(rep, rep_fixup) = reps[0];
            ensure!(rep < rep_fixup, "rep movsb at {rep:#x}, fixup {rep_fixup:#x}");
            let blocks: alloc::vec::Vec<_> = mine.iter().filter(|&&(i, _)| i != rep).collect();
            ensure!(
                blocks.iter().all(|&&(i, f)| i < f && f < rep && f == blocks[0].1),
                "block pairs {blocks:x?}, rep movsb at {rep:#x}"
            );
            // Only the second routine bypasses the page-fault hook.
            ensure_eq!(extable::is_nohook(rep), start == routines[1].0);
        }
        for &(insn, fixup) in &pairs {
            ensure_eq!(extable::fixup_for(insn), Some(fixup));
        }
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

extern "C" {
    fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8;
}

/// The byte at `i` of the test pattern.
fn pat(i: usize) -> u8 {
    (i * 7 + 3) as u8
}

ktest! {
    fn mem_routines_copy_and_fill_exactly_their_range() {
        // `crate::mem`'s memcpy, memmove (both directions, overlapping) and memset at every
        // length up to 100 and a page, at 8 start offsets: the range gets the expected bytes,
        // the guard bytes around it stay as they were, and each returns `dst`.
        let mut buf = alloc::vec![0u8; 2 * 4096 + 64];
        let lens = (0..=100).chain([255, 256, 4095, 4096]);
        for n in lens {
            for off in 0..8 {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = pat(i);
                }
                let base = buf.as_mut_ptr();
                let (src, dst) = (16 + off, 4096 + 32 + (off * 3) % 8);
                // SAFETY: `[src, src + n)` and `[dst, dst + n)` lie inside `buf` (n <= 4096,
                // dst + n <= 4096 + 39 + 4096 < buf.len()) and do not overlap.
                let r = unsafe { memcpy(base.add(dst), base.add(src), n) };
                ensure_eq!(r, base.wrapping_add(dst));
                for (i, &b) in buf.iter().enumerate() {
                    let want = if (dst..dst + n).contains(&i) { pat(src + i - dst) } else { pat(i) };
                    ensure!(b == want, "memcpy n={n} off={off}: byte {i} is {b:#x}, want {want:#x}");
                }
                for shift in [1usize, 7, 8, 33] {
                    for up in [true, false] {
                        for (i, b) in buf.iter_mut().enumerate() {
                            *b = pat(i);
                        }
                        let (s, d) = if up { (16 + off, 16 + off + shift) } else { (16 + off + shift, 16 + off) };
                        // SAFETY: both ranges lie inside `buf` (16 + 7 + 33 + 4096 < buf.len());
                        // memmove allows them to overlap.
                        let r = unsafe { memmove(buf.as_mut_ptr().add(d), buf.as_ptr().add(s), n) };
                        ensure_eq!(r, buf.as_mut_ptr().wrapping_add(d));
                        for (i, &b) in buf.iter().enumerate() {
                            let want = if (d..d + n).contains(&i) { pat(s + i - d) } else { pat(i) };
                            ensure!(b == want, "memmove n={n} off={off} shift={shift} up={up}: byte {i} is {b:#x}, want {want:#x}");
                        }
                    }
                }
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = pat(i);
                }
                let d = 16 + off;
                // SAFETY: `[d, d + n)` lies inside `buf`.
                let r = unsafe { memset(buf.as_mut_ptr().add(d), 0x1A5, n) };
                ensure_eq!(r, buf.as_mut_ptr().wrapping_add(d));
                for (i, &b) in buf.iter().enumerate() {
                    let want = if (d..d + n).contains(&i) { 0xA5 } else { pat(i) };
                    ensure!(b == want, "memset n={n} off={off}: byte {i} is {b:#x}, want {want:#x}");
                }
            }
        }
        Ok(())
    }
}
