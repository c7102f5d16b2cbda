//! Frame-pointer backtraces (the kernel target builds with `-C force-frame-pointers=yes`).

use core::fmt::Write;

/// Prints return addresses by walking the RBP chain from `rbp`, numbering from `first`. Only
/// frames on a known-mapped stack are read, so a corrupt chain ends the walk instead of faulting.
pub fn print_from(out: &mut impl Write, mut rbp: u64, first: usize) {
    let mut last = 0;
    let mut repeats = 0;
    for i in first..first + 64 {
        if rbp == 0 || !rbp.is_multiple_of(8) || !crate::trap::on_known_stack(rbp, 16) {
            break;
        }
        // SAFETY: `[rbp, rbp + 16)` lies inside a mapped kernel or IST stack (checked above) and is
        // 8-aligned; a frame record there is two u64s (saved RBP, return address).
        let (next, ret) = unsafe {
            let p = rbp as *const u64;
            (p.read_volatile(), p.add(1).read_volatile())
        };
        if ret == 0 {
            break;
        }
        if ret == last {
            repeats += 1;
        } else {
            if repeats > 0 {
                let _ = writeln!(out, "    ... previous frame repeated {repeats} more times");
            }
            repeats = 0;
            let _ = writeln!(out, "    #{i} {ret:#018x}");
        }
        last = ret;
        if next <= rbp {
            break;
        }
        rbp = next;
    }
    if repeats > 0 {
        let _ = writeln!(out, "    ... previous frame repeated {repeats} more times");
    }
}

/// Prints a backtrace of the caller.
#[inline(never)]
pub fn print_here(out: &mut impl Write) {
    print_from(out, crate::cpu::frame_pointer(), 0);
}
