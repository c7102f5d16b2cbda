//! zx_vmo_* through dispatch.

mod common;

use abi::default_rights::ZX_DEFAULT_VMO_RIGHTS;
use abi::ops::*;
use abi::vmo_options::{ZX_VMO_DISCARDABLE, ZX_VMO_RESIZABLE};
use abi::Status;
use common::*;
use vm::PhysMem;

const PAGE: u64 = 4096;
const E_ARGS: Result<(), Status> = Err(Status::ERR_INVALID_ARGS);

fn bad_vmo_handles(m: &mut Mock) -> Vec<(u32, Status, &'static str)> {
    let closed = m.closed_handle();
    vec![
        (0, Status::ERR_BAD_HANDLE, "invalid"),
        (closed, Status::ERR_BAD_HANDLE, "closed"),
        (m.root, Status::ERR_WRONG_TYPE, "a VMAR"),
    ]
}

fn size_of(m: &mut Mock, h: u32) -> u64 {
    m.sys(ZX_SYS_VMO_GET_SIZE, &[h as u64, (BUF + 0x100) as u64])
        .unwrap();
    m.peek::<u64>(BUF + 0x100)
}

#[test]
fn create_rights_rounding_and_errors() {
    let mut m = Mock::new();
    let h = m.vmo(5000, 0);
    assert_eq!(m.rights(h), ZX_DEFAULT_VMO_RIGHTS);
    assert_eq!(size_of(&mut m, h), 2 * PAGE, "rounded up to pages");
    let r = m.vmo(0, ZX_VMO_RESIZABLE);
    assert_eq!(m.rights(r), ZX_DEFAULT_VMO_RIGHTS | ZX_RIGHT_RESIZE);
    assert_eq!(size_of(&mut m, r), 0);
    let create = |m: &mut Mock, size: u64, opts: u32, out: usize| {
        m.sys(ZX_SYS_VMO_CREATE, &[size, opts as u64, out as u64])
    };
    assert_eq!(create(&mut m, PAGE, 1 << 5, BUF), E_ARGS, "unknown option");
    assert_eq!(
        create(&mut m, PAGE, ZX_VMO_RESIZABLE | ZX_VMO_DISCARDABLE, BUF),
        E_ARGS,
        "discardable and resizable"
    );
    assert_eq!(
        create(&mut m, u64::MAX, 0, BUF),
        Err(Status::ERR_OUT_OF_RANGE),
        "size overflows when rounded"
    );
    let n = m.handle_count();
    for (addr, what) in BAD_OUT {
        assert_eq!(create(&mut m, PAGE, 0, addr), E_ARGS, "{what}");
        assert_eq!(m.handle_count(), n, "{what}: no handle left");
    }
}

#[test]
fn read_write_roundtrip_across_chunks() {
    let mut m = Mock::new();
    let len = 40 * 1024; // > COPY_CHUNK, not a page multiple
    let h = m.vmo(64 * 1024, 0);
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    m.poke(BUF, &data);
    assert_eq!(
        m.sys(ZX_SYS_VMO_WRITE, &[h as u64, BUF as u64, 100, len as u64]),
        Ok(())
    );
    m.poke(BUF, &vec![0; len]);
    assert_eq!(
        m.sys(ZX_SYS_VMO_READ, &[h as u64, BUF as u64, 100, len as u64]),
        Ok(())
    );
    assert_eq!(m.mem.peek(BUF, len), data);
    // Zero-length at the very end, and (null, 0).
    assert_eq!(m.sys(ZX_SYS_VMO_READ, &[h as u64, 0, 64 * 1024, 0]), Ok(()));
}

#[test]
fn read_write_straight_through_frames_or_a_kernel_buffer_give_the_same_bytes() {
    // The fast path (VMO frames <-> user memory with no fault resolved), the fallback through a
    // kernel buffer (no-fault copies unsupported), and a mix (two pages of the buffer not
    // present yet: the fast path stops at the first, the fallback does the rest).
    let len = 40 * 1024;
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    for mode in ["fast", "fallback", "mixed"] {
        let mut m = Mock::new();
        match mode {
            "fallback" => m.mem.frames = None,
            "mixed" => m.mem.not_present = vec![BUF + 3 * PAGE as usize, BUF + 7 * PAGE as usize],
            _ => {}
        }
        let h = m.vmo(64 * 1024, 0);
        let (fast0, slow0) = (m.mem.nofault_copies, m.mem.copies);
        m.poke(BUF, &data);
        let write = m.sys(ZX_SYS_VMO_WRITE, &[h as u64, BUF as u64, 100, len as u64]);
        assert_eq!(write, Ok(()), "{mode}");
        m.poke(BUF, &vec![0xEE; len]);
        let read = m.sys(ZX_SYS_VMO_READ, &[h as u64, BUF as u64, 100, len as u64]);
        assert_eq!(read, Ok(()), "{mode}");
        assert_eq!(m.mem.peek(BUF, len), data, "{mode}");
        // Pages never written read as zeros (the fast path copies zeros for them).
        m.poke(BUF, &vec![0xEE; 2 * PAGE as usize]);
        let tail = m.sys(
            ZX_SYS_VMO_READ,
            &[h as u64, BUF as u64, 48 * 1024, 2 * PAGE],
        );
        assert_eq!(tail, Ok(()), "{mode}");
        assert_eq!(
            m.mem.peek(BUF, 2 * PAGE as usize),
            vec![0; 2 * PAGE as usize],
            "{mode}"
        );
        let (fast, slow) = (m.mem.nofault_copies - fast0, m.mem.copies - slow0);
        match mode {
            "fast" => assert!(
                fast > 0 && slow == 0,
                "{mode}: {fast} fast, {slow} buffered"
            ),
            "fallback" => assert!(
                fast == 0 && slow > 0,
                "{mode}: {fast} fast, {slow} buffered"
            ),
            _ => assert!(fast > 0 && slow > 0, "{mode}: {fast} fast, {slow} buffered"),
        }
    }
}

#[test]
fn read_write_errors() {
    let mut m = Mock::new();
    let h = m.vmo(2 * PAGE, 0);
    for nr in [ZX_SYS_VMO_READ, ZX_SYS_VMO_WRITE] {
        for (bad, status, what) in bad_vmo_handles(&mut m) {
            assert_eq!(
                m.sys(nr, &[bad as u64, BUF as u64, 0, 8]),
                Err(status),
                "{what}"
            );
        }
        let oor = Err(Status::ERR_OUT_OF_RANGE);
        assert_eq!(
            m.sys(nr, &[h as u64, BUF as u64, 2 * PAGE - 4, 8]),
            oor,
            "past the end"
        );
        assert_eq!(
            m.sys(nr, &[h as u64, BUF as u64, u64::MAX - 2, 8]),
            oor,
            "overflow"
        );
        assert_eq!(
            m.sys(nr, &[h as u64, BUF as u64, 0, u64::MAX]),
            oor,
            "huge len"
        );
        for (addr, what) in [(0usize, "null"), (UNMAPPED, "unmapped"), (KERNEL, "kernel")] {
            assert_eq!(m.sys(nr, &[h as u64, addr as u64, 0, 8]), E_ARGS, "{what}");
        }
    }
    assert_eq!(
        m.sys(ZX_SYS_VMO_READ, &[h as u64, RO as u64, 0, 8]),
        E_ARGS,
        "reading into read-only memory"
    );
    assert_eq!(
        m.sys(ZX_SYS_VMO_WRITE, &[h as u64, RO as u64, 0, 8]),
        Ok(()),
        "writing from read-only memory"
    );
    // Rights reduced by duplicate.
    let ro = m.dup(h, ZX_RIGHT_READ);
    let wo = m.dup(h, ZX_RIGHT_WRITE);
    let denied = Err(Status::ERR_ACCESS_DENIED);
    assert_eq!(
        m.sys(ZX_SYS_VMO_WRITE, &[ro as u64, BUF as u64, 0, 8]),
        denied
    );
    assert_eq!(
        m.sys(ZX_SYS_VMO_READ, &[wo as u64, BUF as u64, 0, 8]),
        denied
    );
    assert_eq!(
        m.sys(ZX_SYS_VMO_READ, &[ro as u64, BUF as u64, 0, 8]),
        Ok(())
    );
}

#[test]
fn get_and_set_size() {
    let mut m = Mock::new();
    let r = m.vmo(PAGE, ZX_VMO_RESIZABLE);
    assert_eq!(
        m.sys(ZX_SYS_VMO_SET_SIZE, &[r as u64, 3 * PAGE + 1]),
        Ok(())
    );
    assert_eq!(size_of(&mut m, r), 4 * PAGE);
    let none = m.dup(r, 0);
    assert_eq!(size_of(&mut m, none), 4 * PAGE, "get_size needs no right");
    for (bad, status, what) in bad_vmo_handles(&mut m) {
        assert_eq!(
            m.sys(ZX_SYS_VMO_GET_SIZE, &[bad as u64, BUF as u64]),
            Err(status),
            "{what}"
        );
        assert_eq!(
            m.sys(ZX_SYS_VMO_SET_SIZE, &[bad as u64, PAGE]),
            Err(status),
            "{what}"
        );
    }
    for (addr, what) in BAD_OUT {
        assert_eq!(
            m.sys(ZX_SYS_VMO_GET_SIZE, &[r as u64, addr as u64]),
            E_ARGS,
            "{what}"
        );
    }
    let denied = Err(Status::ERR_ACCESS_DENIED);
    let no_resize = m.dup(r, ZX_RIGHT_WRITE);
    assert_eq!(
        m.sys(ZX_SYS_VMO_SET_SIZE, &[no_resize as u64, PAGE]),
        denied
    );
    let fixed = m.vmo(PAGE, 0);
    for size in [2 * PAGE, 0, PAGE] {
        assert_eq!(
            m.sys(ZX_SYS_VMO_SET_SIZE, &[fixed as u64, size]),
            Err(Status::ERR_UNAVAILABLE),
            "ZIRCON NoResize: a non-resizable VMO, grown, shrunk or kept, is UNAVAILABLE"
        );
    }
    assert_eq!(size_of(&mut m, fixed), PAGE);
    let fixed_ro = m.dup(fixed, ZX_RIGHT_READ);
    assert_eq!(
        m.sys(ZX_SYS_VMO_SET_SIZE, &[fixed_ro as u64, 2 * PAGE]),
        denied,
        "WRITE is checked first"
    );
    assert_eq!(
        m.sys(ZX_SYS_VMO_SET_SIZE, &[r as u64, u64::MAX]),
        Err(Status::ERR_OUT_OF_RANGE)
    );
}

#[test]
fn content_size_property() {
    // ZIRCON (core test `VmoTestCase.ContentSize`): the creation size, then whatever is set
    // (past the end too), then the size of the last resize, unrounded.
    use abi::props::ZX_PROP_VMO_CONTENT_SIZE;
    use abi::syscall_numbers::{ZX_SYS_OBJECT_GET_PROPERTY, ZX_SYS_OBJECT_SET_PROPERTY};
    let mut m = Mock::new();
    let len = 4 * PAGE;
    let h = m.vmo(len, ZX_VMO_RESIZABLE);
    let get = |m: &mut Mock, h: u32, size: u64| {
        m.poke(BUF, &42u64.to_le_bytes());
        m.sys(
            ZX_SYS_OBJECT_GET_PROPERTY,
            &[h as u64, ZX_PROP_VMO_CONTENT_SIZE as u64, BUF as u64, size],
        )
        .map(|()| u64::from_le_bytes(m.mem.peek(BUF, 8).try_into().unwrap()))
    };
    let set = |m: &mut Mock, h: u32, v: u64, size: u64| {
        m.poke(BUF, &v.to_le_bytes());
        m.sys(
            ZX_SYS_OBJECT_SET_PROPERTY,
            &[h as u64, ZX_PROP_VMO_CONTENT_SIZE as u64, BUF as u64, size],
        )
    };
    assert_eq!(get(&mut m, h, 8), Ok(len));
    assert_eq!(set(&mut m, h, len / 3, 8), Ok(()));
    assert_eq!(get(&mut m, h, 8), Ok(len / 3));
    assert_eq!(set(&mut m, h, len + 15643, 8), Ok(()));
    assert_eq!(get(&mut m, h, 8), Ok(len + 15643));
    assert_eq!(m.sys(ZX_SYS_VMO_SET_SIZE, &[h as u64, 5461]), Ok(()));
    assert_eq!(get(&mut m, h, 8), Ok(5461));
    assert_eq!(
        size_of(&mut m, h),
        2 * PAGE,
        "the VMO's size is whole pages"
    );
    // A non-resizable VMO starts at its creation size too, unrounded.
    let fixed = m.vmo(100, 0);
    assert_eq!(get(&mut m, fixed, 8), Ok(100));
    // Small buffers, rights, other objects.
    assert_eq!(get(&mut m, h, 7), Err(Status::ERR_BUFFER_TOO_SMALL));
    assert_eq!(set(&mut m, h, 1, 4), Err(Status::ERR_BUFFER_TOO_SMALL));
    let no_props = m.dup(h, ZX_RIGHT_READ | ZX_RIGHT_WRITE);
    assert_eq!(get(&mut m, no_props, 8), Err(Status::ERR_ACCESS_DENIED));
    assert_eq!(set(&mut m, no_props, 1, 8), Err(Status::ERR_ACCESS_DENIED));
    assert_eq!(get(&mut m, h, 8), Ok(5461), "a refused set changed nothing");
}

#[test]
fn op_range() {
    let mut m = Mock::new();
    let h = m.vmo(4 * PAGE, 0);
    let op = |m: &mut Mock, h: u32, op: u32, off: u64, len: u64| {
        m.sys(ZX_SYS_VMO_OP_RANGE, &[h as u64, op as u64, off, len, 0, 0])
    };
    let free = m.phys.free_frames();
    assert_eq!(op(&mut m, h, ZX_VMO_OP_COMMIT, 0, 3 * PAGE), Ok(()));
    assert_eq!(m.phys.free_frames(), free - 3);
    assert_eq!(op(&mut m, h, ZX_VMO_OP_DECOMMIT, 0, PAGE), Ok(()));
    assert_eq!(m.phys.free_frames(), free - 2);
    // ZIRCON DecommitMisaligned: an unaligned offset or size is INVALID_ARGS (after the range
    // check), committed or not, and nothing is decommitted.
    for (off, len) in [
        (0x10, 0x100),
        (PAGE, 0x100),
        (0x10, PAGE),
        (3 * PAGE + 1, 0),
    ] {
        assert_eq!(
            op(&mut m, h, ZX_VMO_OP_DECOMMIT, off, len),
            Err(Status::ERR_INVALID_ARGS),
            "decommit {off:#x}+{len:#x}"
        );
    }
    assert_eq!(
        op(&mut m, h, ZX_VMO_OP_DECOMMIT, 0x10, 5 * PAGE),
        Err(Status::ERR_OUT_OF_RANGE)
    );
    assert_eq!(
        m.phys.free_frames(),
        free - 2,
        "an unaligned decommit freed a page"
    );
    // ZERO: whole pages decommitted, partial ones zeroed.
    m.poke(BUF, &[0x5a; 3 * 4096]);
    m.sys(ZX_SYS_VMO_WRITE, &[h as u64, BUF as u64, 0, 3 * PAGE])
        .unwrap();
    assert_eq!(op(&mut m, h, ZX_VMO_OP_ZERO, 100, 2 * PAGE), Ok(()));
    m.sys(ZX_SYS_VMO_READ, &[h as u64, BUF as u64, 0, 3 * PAGE])
        .unwrap();
    let back = m.mem.peek(BUF, 3 * 4096);
    assert!(back[..100].iter().all(|&b| b == 0x5a));
    assert!(back[100..100 + 2 * 4096].iter().all(|&b| b == 0));
    assert!(back[100 + 2 * 4096..].iter().all(|&b| b == 0x5a));
    assert_eq!(m.phys.free_frames(), free - 2, "page 1 decommitted");
    assert_eq!(op(&mut m, h, ZX_VMO_OP_DONT_NEED, 0, PAGE), Ok(()));
    assert_eq!(op(&mut m, h, ZX_VMO_OP_ALWAYS_NEED, 0, PAGE), Ok(()));
    // Errors.
    for (bad, status, what) in bad_vmo_handles(&mut m) {
        assert_eq!(
            op(&mut m, bad, ZX_VMO_OP_COMMIT, 0, PAGE),
            Err(status),
            "{what}"
        );
    }
    let oor = Err(Status::ERR_OUT_OF_RANGE);
    for o in [
        ZX_VMO_OP_COMMIT,
        ZX_VMO_OP_DECOMMIT,
        ZX_VMO_OP_ZERO,
        ZX_VMO_OP_DONT_NEED,
    ] {
        assert_eq!(op(&mut m, h, o, 0, 5 * PAGE), oor, "op {o}: past the end");
        assert_eq!(op(&mut m, h, o, u64::MAX, 2), oor, "op {o}: overflow");
    }
    let ro = m.dup(h, ZX_RIGHT_READ);
    for o in [ZX_VMO_OP_COMMIT, ZX_VMO_OP_DECOMMIT, ZX_VMO_OP_ZERO] {
        assert_eq!(
            op(&mut m, ro, o, 0, PAGE),
            Err(Status::ERR_ACCESS_DENIED),
            "op {o}"
        );
    }
    // LOCK, TRY_LOCK (11) and UNLOCK: no VMO here is discardable (Zircon: NOT_SUPPORTED on a
    // VMO that is not).
    for o in [ZX_VMO_OP_LOCK, ZX_VMO_OP_TRY_LOCK, ZX_VMO_OP_UNLOCK] {
        assert_eq!(
            op(&mut m, h, o, 0, PAGE),
            Err(Status::ERR_NOT_SUPPORTED),
            "op {o}"
        );
    }
    assert_eq!(op(&mut m, h, 99, 0, PAGE), E_ARGS, "unknown op");
    // Out of frames: NO_MEMORY.
    let big = m.vmo(2 * FRAMES as u64 * PAGE, 0);
    assert_eq!(
        op(&mut m, big, ZX_VMO_OP_COMMIT, 0, 2 * FRAMES as u64 * PAGE),
        Err(Status::ERR_NO_MEMORY)
    );
}

#[test]
fn replace_as_executable() {
    let mut m = Mock::new();
    let h = m.vmo(PAGE, 0);
    let rex = |m: &mut Mock, h: u32, vmex: u32, out: usize| {
        m.sys(
            ZX_SYS_VMO_REPLACE_AS_EXECUTABLE,
            &[h as u64, vmex as u64, out as u64],
        )
    };
    assert_eq!(rex(&mut m, h, 0, BUF), Ok(()));
    let x = m.peek::<u32>(BUF);
    assert!(!m.is_valid(h));
    assert_eq!(m.rights(x), ZX_DEFAULT_VMO_RIGHTS | ZX_RIGHT_EXECUTE);
    // Executable VMOs map executable.
    let a = m
        .map(
            m.root,
            ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE,
            0,
            x,
            0,
            PAGE as usize,
        )
        .unwrap();
    assert_ne!(a, 0);
    // Source not a handle: nothing consumed.
    let stale = m.closed_handle();
    assert_eq!(rex(&mut m, stale, 0, BUF), Err(Status::ERR_BAD_HANDLE));
    // A bad vmex: BAD_HANDLE, and the VMO is consumed anyway.
    let v = m.vmo(PAGE, 0);
    assert_eq!(rex(&mut m, v, stale, BUF), Err(Status::ERR_BAD_HANDLE));
    assert!(!m.is_valid(v));
    // A vmex that is a handle but not a resource: WRONG_TYPE, consumed.
    let v = m.vmo(PAGE, 0);
    let root = m.root;
    assert_eq!(rex(&mut m, v, root, BUF), Err(Status::ERR_WRONG_TYPE));
    assert!(!m.is_valid(v));
    // Not a VMO: BAD_HANDLE (vmo.cc), consumed.
    let (sub, _) = m.allocate(m.root, 0, 0, PAGE as usize).unwrap();
    assert_eq!(rex(&mut m, sub, 0, BUF), Err(Status::ERR_BAD_HANDLE));
    assert!(!m.is_valid(sub));
    // Bad out pointer: INVALID_ARGS, source consumed, no new handle.
    for (addr, what) in BAD_OUT {
        let v = m.vmo(PAGE, 0);
        let n = m.handle_count();
        assert_eq!(rex(&mut m, v, 0, addr), E_ARGS, "{what}");
        assert_eq!(m.handle_count(), n - 1, "{what}");
    }
}
