//! Dispatch: numbers, argument narrowing, values returned in `rax`, exit markers, and every row
//! of the syscall table reaching its handler with the registers the table lists.

mod common;

use abi::syscall_numbers::{ArgKind, Returns, Syscall, SYSCALLS};
use abi::Status;
use common::*;
use syscalls::dispatch::dispatch_counted;
use syscalls::{dispatch, NO_RETURN};

#[test]
fn unknown_numbers_are_bad_syscall() {
    let mut m = Mock::new();
    for nr in [
        ZX_SYS_COUNT as u64,
        1000,
        u32::MAX as u64,
        1 << 32,
        u64::MAX,
    ] {
        assert_eq!(
            dispatch(&mut m, nr, &[0; 8]),
            Status::ERR_BAD_SYSCALL.into_raw() as i64,
            "{nr}"
        );
    }
}

#[test]
fn system_get_features_vm_has_no_xom_and_other_kinds_are_not_supported() {
    use abi::features::*;
    let mut m = Mock::new();
    m.poke(BUF, &[0xff; 4]);
    assert_eq!(
        m.sys(
            ZX_SYS_SYSTEM_GET_FEATURES,
            &[ZX_FEATURE_KIND_VM as u64, BUF as u64]
        ),
        Ok(())
    );
    assert_eq!(m.peek::<u32>(BUF) & ZX_VM_FEATURE_CAN_MAP_XOM, 0);
    assert_eq!(m.peek::<u32>(BUF), vm::ARCH_VM_FEATURES);
    m.poke(BUF, &[0xff; 4]);
    assert_eq!(
        m.sys(
            ZX_SYS_SYSTEM_GET_FEATURES,
            &[ZX_FEATURE_KIND_ADDRESS_TAGGING as u64, BUF as u64]
        ),
        Ok(())
    );
    assert_eq!(m.peek::<u32>(BUF), 0);
    for kind in [
        ZX_FEATURE_KIND_CPU,
        ZX_FEATURE_KIND_HW_BREAKPOINT_COUNT,
        ZX_FEATURE_KIND_HW_WATCHPOINT_COUNT,
        5,
        u32::MAX,
    ] {
        assert_eq!(
            m.sys(ZX_SYS_SYSTEM_GET_FEATURES, &[kind as u64, BUF as u64]),
            Err(Status::ERR_NOT_SUPPORTED),
            "{kind}"
        );
    }
    for (ptr, what) in BAD_OUT {
        assert_eq!(
            m.sys(
                ZX_SYS_SYSTEM_GET_FEATURES,
                &[ZX_FEATURE_KIND_VM as u64, ptr as u64]
            ),
            Err(Status::ERR_INVALID_ARGS),
            "{what}"
        );
    }
}

#[test]
fn kernel_stats_validates_the_buffer_then_asks_the_context() {
    let mut m = Mock::new();
    // A null or kernel-half buffer is INVALID_ARGS before anything else.
    assert_eq!(
        m.sys(ZX_SYS_DEBUG_KERNEL_STATS, &[0, 64]),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(
        m.sys(ZX_SYS_DEBUG_KERNEL_STATS, &[0xffff_8000_0000_0000, 64]),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(
        m.sys(ZX_SYS_DEBUG_KERNEL_STATS, &[0x1000, u64::MAX]),
        Err(Status::ERR_INVALID_ARGS)
    );
    // One counter short (the ninth, DATA_FRAMES, is needed too).
    assert_eq!(
        m.sys(ZX_SYS_DEBUG_KERNEL_STATS, &[0x1000, 64]),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    // The mock has no kernel counters: NOT_SUPPORTED (the trait's default).
    assert_eq!(
        m.sys(ZX_SYS_DEBUG_KERNEL_STATS, &[0x1000, 72]),
        Err(Status::ERR_NOT_SUPPORTED)
    );
}

#[test]
fn clock_calls_return_values() {
    let mut m = Mock::new();
    assert_eq!(m.call(ZX_SYS_TICKS_GET, &[]), Ok(123_456));
    assert_eq!(m.call(ZX_SYS_TICKS_PER_SECOND, &[]), Ok(1_000_000_000));
    assert_eq!(m.call(ZX_SYS_CLOCK_GET_MONOTONIC, &[]), Ok(777));
}

#[test]
fn handle_arguments_use_the_low_32_bits() {
    let mut m = Mock::new();
    let vmo = m.vmo(4096, 0);
    let garbage = 0xdead_beef_0000_0000u64;
    assert_eq!(
        m.sys(
            ZX_SYS_VMO_GET_SIZE,
            &[garbage | vmo as u64, (BUF + 16) as u64]
        ),
        Ok(())
    );
    assert_eq!(m.peek::<u64>(BUF + 16), 4096);
}

#[test]
fn exits_return_the_marker_and_tell_the_kernel() {
    let mut m = Mock::new();
    assert_eq!(
        dispatch(&mut m, ZX_SYS_THREAD_EXIT as u64, &[0; 8]),
        NO_RETURN
    );
    assert!(m.thread_exited);
    let mut args = [0u64; 8];
    args[0] = (-7i64) as u64;
    assert_eq!(
        dispatch(&mut m, ZX_SYS_PROCESS_EXIT as u64, &args),
        NO_RETURN
    );
    assert_eq!(m.process.state.lock().unwrap().exited, Some(-7));
    assert_eq!(
        m.handle_count(),
        0,
        "the mock kernel's teardown closed every handle"
    );
}

#[test]
fn debug_write() {
    let mut m = Mock::new();
    m.poke(BUF, b"hello");
    assert_eq!(m.sys(ZX_SYS_DEBUG_WRITE, &[BUF as u64, 5]), Ok(()));
    assert_eq!(m.log, b"hello");
    assert_eq!(m.sys(ZX_SYS_DEBUG_WRITE, &[0, 0]), Ok(()), "(null, 0)");
    for (addr, what) in [(0usize, "null"), (UNMAPPED, "unmapped"), (KERNEL, "kernel")] {
        assert_eq!(
            m.sys(ZX_SYS_DEBUG_WRITE, &[addr as u64, 5]),
            Err(Status::ERR_INVALID_ARGS),
            "{what}"
        );
    }
    assert_eq!(
        m.sys(ZX_SYS_DEBUG_WRITE, &[BUF as u64, u64::MAX]),
        Ok(()),
        "truncated to MAX_DEBUG_WRITE, inside the buffer"
    );
    assert_eq!(m.log.len(), 5 + syscalls::sys::misc::MAX_DEBUG_WRITE);
}

/// The registers for one call of `row` in [`every_syscall_of_the_table_reaches_its_handler`]:
/// a bogus handle with garbage in the upper half for every handle, the writable buffer for
/// every pointer, 16 for sizes and other 64-bit values, 0 for options and other `uint32_t`s.
fn probe_args(row: &Syscall) -> [u64; 8] {
    let mut args = [0u64; 8];
    for (arg, param) in args.iter_mut().zip(row.params) {
        *arg = match param.kind {
            ArgKind::Handle => 0xdead_beef_0000_0000 | u64::from(BOGUS_HANDLE),
            // A topic and a feature kind the handlers support, so that their answer is not
            // NOT_SUPPORTED.
            ArgKind::U32 if param.name == "topic" => {
                u64::from(abi::info::topic::ZX_INFO_HANDLE_BASIC)
            }
            ArgKind::U32 if param.name == "kind" => u64::from(abi::features::ZX_FEATURE_KIND_VM),
            ArgKind::U32 => 0,
            ArgKind::Usize | ArgKind::U64 | ArgKind::I64 => 16,
            ArgKind::Ptr | ArgKind::Out { .. } => BUF as u64,
        };
    }
    args
}

#[test]
fn every_syscall_of_the_table_reaches_its_handler() {
    for row in SYSCALLS {
        let mut m = Mock::new();
        let d = dispatch_counted(&mut m, u64::from(row.nr), &probe_args(row));
        assert_eq!(
            d.registers_decoded,
            row.arg_count(),
            "{}: the dispatcher decodes as many registers as the table lists",
            row.name
        );
        match row.returns {
            Returns::Status => {
                for unknown in [Status::ERR_BAD_SYSCALL, Status::ERR_NOT_SUPPORTED] {
                    assert_ne!(
                        d.rax,
                        i64::from(unknown.into_raw()),
                        "{} does not reach a handler",
                        row.name
                    );
                }
                if row.params.iter().any(|p| p.kind == ArgKind::Handle) {
                    assert_eq!(
                        d.rax,
                        i64::from(Status::ERR_BAD_HANDLE.into_raw()),
                        "{}: the bogus handle reaches the handler's lookup",
                        row.name
                    );
                }
            }
            Returns::Value => assert!(
                [123_456, 1_000_000_000, 777].contains(&d.rax),
                "{}: a value of the mock's clock, not a status: {}",
                row.name,
                d.rax
            ),
            Returns::NoReturn => assert_eq!(d.rax, NO_RETURN, "{}", row.name),
        }
    }
}

#[test]
fn unknown_numbers_decode_nothing() {
    let mut m = Mock::new();
    for nr in [ZX_SYS_COUNT as u64, u64::MAX] {
        let d = dispatch_counted(&mut m, nr, &[1; 8]);
        assert_eq!(d.registers_decoded, 0, "{nr}");
        assert_eq!(d.rax, i64::from(Status::ERR_BAD_SYSCALL.into_raw()));
    }
}
