//! zx_vmo_* through dispatch.

mod common;

use abi::default_rights::{ZX_DEFAULT_PROCESS_RIGHTS, ZX_DEFAULT_VMO_RIGHTS};
use abi::ops::*;
use abi::props::ZX_PROP_VMO_CONTENT_SIZE;
use abi::vmo_options::{ZX_VMO_DISCARDABLE, ZX_VMO_RESIZABLE};
use abi::Status;
use abi::ZxResult;
use common::*;
use syscalls::object::Object;
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

/// Current Zircon's order: WRITE, then RESIZE only for a resizable VMO, then the rounding
/// overflow, then UNAVAILABLE for a non-resizable VMO (whose handles lack RESIZE).
#[test]
fn set_size_of_a_non_resizable_vmo_is_unavailable() {
    let mut m = Mock::new();
    let set = |m: &mut Mock, h: u32, size: u64| m.sys(ZX_SYS_VMO_SET_SIZE, &[h as u64, size]);
    let fixed = m.vmo(4 * PAGE, 0);
    assert_eq!(m.rights(fixed) & ZX_RIGHT_RESIZE, 0);
    let unavailable = Err(Status::ERR_UNAVAILABLE);
    assert_eq!(set(&mut m, fixed, 5 * PAGE), unavailable, "grow");
    assert_eq!(set(&mut m, fixed, 3 * PAGE), unavailable, "shrink");
    assert_eq!(set(&mut m, fixed, 4 * PAGE), unavailable, "same size");
    assert_eq!(size_of(&mut m, fixed), 4 * PAGE);
    let read_only = m.dup(fixed, ZX_RIGHT_READ);
    assert_eq!(
        set(&mut m, read_only, PAGE),
        Err(Status::ERR_ACCESS_DENIED),
        "WRITE first"
    );
    assert_eq!(
        set(&mut m, fixed, u64::MAX),
        Err(Status::ERR_OUT_OF_RANGE),
        "the rounding overflow before UNAVAILABLE"
    );
    let r = m.vmo(PAGE, ZX_VMO_RESIZABLE);
    let write_only = m.dup(r, ZX_RIGHT_WRITE);
    assert_eq!(
        set(&mut m, write_only, 2 * PAGE),
        Err(Status::ERR_ACCESS_DENIED),
        "a resizable VMO needs RESIZE"
    );
    assert_eq!(size_of(&mut m, r), PAGE);
}

/// set_size to an unaligned size zeroes the rest of its last page; the content size follows.
#[test]
fn set_size_zeroes_the_tail_of_the_last_page() {
    let mut m = Mock::new();
    let r = m.vmo(2 * PAGE, ZX_VMO_RESIZABLE);
    m.poke(BUF, &[0x77; 2 * 4096]);
    m.sys(ZX_SYS_VMO_WRITE, &[r as u64, BUF as u64, 0, 2 * PAGE])
        .unwrap();
    m.sys(ZX_SYS_VMO_SET_SIZE, &[r as u64, 5461]).unwrap();
    assert_eq!(size_of(&mut m, r), 2 * PAGE);
    m.sys(ZX_SYS_VMO_READ, &[r as u64, BUF as u64, 0, 2 * PAGE])
        .unwrap();
    let back = m.mem.peek(BUF, 2 * 4096);
    assert!(
        back[..5461].iter().all(|&b| b == 0x77),
        "kept below the size"
    );
    assert!(back[5461..].iter().all(|&b| b == 0), "zeroed past the size");
    assert_eq!(content_size(&mut m, r), Ok(5461));
}

fn content_size(m: &mut Mock, h: u32) -> Result<u64, Status> {
    let at = BUF + 0x200;
    m.sys(
        ZX_SYS_OBJECT_GET_PROPERTY,
        &[h as u64, ZX_PROP_VMO_CONTENT_SIZE as u64, at as u64, 8],
    )?;
    Ok(m.peek::<u64>(at))
}

fn set_content_size(m: &mut Mock, h: u32, value: u64, size: u64) -> ZxResult {
    let at = BUF + 0x300;
    m.poke(at, &value.to_le_bytes());
    m.sys(
        ZX_SYS_OBJECT_SET_PROPERTY,
        &[h as u64, ZX_PROP_VMO_CONTENT_SIZE as u64, at as u64, size],
    )
}

/// `ZX_PROP_VMO_CONTENT_SIZE` as current Zircon's `sys_object_get_property` /
/// `sys_object_set_property`: setting needs WRITE besides SET_PROPERTY (checked first) and zeroes
/// the VMO's bytes from the new content size to its end; other objects are WRONG_TYPE.
#[test]
fn content_size_set_needs_write_and_zeroes_past_it() {
    let mut m = Mock::new();
    let h = m.vmo(4 * PAGE + 42, ZX_VMO_RESIZABLE);
    assert_eq!(content_size(&mut m, h), Ok(4 * PAGE + 42), "creation size");
    m.poke(BUF, &[0x33; 5 * 4096]);
    m.sys(ZX_SYS_VMO_WRITE, &[h as u64, BUF as u64, 0, 5 * PAGE])
        .unwrap();
    assert_eq!(set_content_size(&mut m, h, 1000, 8), Ok(()));
    assert_eq!(content_size(&mut m, h), Ok(1000));
    assert_eq!(size_of(&mut m, h), 5 * PAGE, "the size stays");
    m.sys(ZX_SYS_VMO_READ, &[h as u64, BUF as u64, 0, 5 * PAGE])
        .unwrap();
    let back = m.mem.peek(BUF, 5 * 4096);
    assert!(back[..1000].iter().all(|&b| b == 0x33), "kept below");
    assert!(back[1000..].iter().all(|&b| b == 0), "zeroed from it");
    assert_eq!(
        set_content_size(&mut m, h, 1 << 40, 8),
        Ok(()),
        "past the end"
    );
    assert_eq!(content_size(&mut m, h), Ok(1 << 40));
    m.sys(ZX_SYS_VMO_SET_SIZE, &[h as u64, 5461]).unwrap();
    assert_eq!(content_size(&mut m, h), Ok(5461), "set_size sets it");
    // Rights: GET_PROPERTY to read; SET_PROPERTY and WRITE to set.
    let no_get = m.dup(h, ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_GET_PROPERTY);
    assert_eq!(content_size(&mut m, no_get), Err(Status::ERR_ACCESS_DENIED));
    let read_only = m.dup(h, ZX_RIGHT_READ | ZX_RIGHT_SET_PROPERTY);
    assert_eq!(
        set_content_size(&mut m, read_only, 7, 8),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(
        set_content_size(&mut m, read_only, 7, 1),
        Err(Status::ERR_ACCESS_DENIED),
        "WRITE before the size"
    );
    let rw = m.dup(h, ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_SET_PROPERTY);
    assert_eq!(set_content_size(&mut m, rw, 5461, 8), Ok(()));
    let no_set = m.dup(h, ZX_RIGHT_WRITE);
    assert_eq!(
        set_content_size(&mut m, no_set, 7, 8),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(content_size(&mut m, h), Ok(5461), "nothing changed");
    // Sizes and types.
    assert_eq!(
        m.sys(
            ZX_SYS_OBJECT_GET_PROPERTY,
            &[h as u64, ZX_PROP_VMO_CONTENT_SIZE as u64, BUF as u64, 7]
        ),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    assert_eq!(
        set_content_size(&mut m, h, 7, 7),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    assert_eq!(
        m.sys(
            ZX_SYS_OBJECT_GET_PROPERTY,
            &[h as u64, ZX_PROP_VMO_CONTENT_SIZE as u64, 0, 8]
        ),
        E_ARGS,
        "null value"
    );
    let process = m.add(
        Object::Process(m.process.clone()),
        ZX_DEFAULT_PROCESS_RIGHTS,
    );
    assert_eq!(
        content_size(&mut m, process),
        Err(Status::ERR_WRONG_TYPE),
        "a process"
    );
    assert_eq!(
        set_content_size(&mut m, process, 7, 8),
        Err(Status::ERR_WRONG_TYPE),
        "a process"
    );
    assert_eq!(content_size(&mut m, h), Ok(5461), "nothing changed");
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
        (3 * PAGE + 1, 1),
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
    // LOCK, TRY_LOCK (11) and UNLOCK of a VMO that is not discardable: READ or WRITE, then
    // NOT_SUPPORTED (ZIRCON `VmoTestCase.LockUnlock`).
    let wo = m.dup(h, ZX_RIGHT_WRITE);
    let none = m.dup(h, ZX_RIGHT_MAP);
    for o in [ZX_VMO_OP_LOCK, ZX_VMO_OP_TRY_LOCK, ZX_VMO_OP_UNLOCK] {
        for handle in [h, ro, wo] {
            assert_eq!(
                op(&mut m, handle, o, 0, 4 * PAGE),
                Err(Status::ERR_NOT_SUPPORTED),
                "op {o}"
            );
        }
        assert_eq!(
            op(&mut m, none, o, 0, 4 * PAGE),
            Err(Status::ERR_ACCESS_DENIED),
            "op {o} without READ and WRITE"
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

/// LOCK / TRY_LOCK / UNLOCK of a discardable VMO (vmo.cc `LockUnlock`, `Discardable`,
/// `OpOutOfBounds`): whole VMO only, LOCK fills `zx_vmo_lock_state_t` and needs its buffer,
/// UNLOCK of an unlocked VMO is BAD_STATE, READ or WRITE suffices.
#[test]
fn discardable_lock_unlock() {
    let mut m = Mock::new();
    let size = 3 * PAGE;
    let h = m.vmo(size, ZX_VMO_DISCARDABLE);
    let op = |m: &mut Mock, h: u32, o: u32, off: u64, len: u64, buf: usize, n: u64| {
        m.sys(
            ZX_SYS_VMO_OP_RANGE,
            &[h as u64, o as u64, off, len, buf as u64, n],
        )
    };
    let state = BUF + 0x400;
    m.poke(state, &[0xee; 32]);
    assert_eq!(op(&mut m, h, ZX_VMO_OP_LOCK, 0, size, state, 32), Ok(()));
    let word = |m: &Mock, i: usize| m.peek::<u64>(state + 8 * i);
    assert_eq!(
        [word(&m, 0), word(&m, 1), word(&m, 2), word(&m, 3)],
        [0, size, 0, 0]
    );
    assert_eq!(op(&mut m, h, ZX_VMO_OP_UNLOCK, 0, size, 0, 0), Ok(()));
    assert_eq!(
        op(&mut m, h, ZX_VMO_OP_UNLOCK, 0, size, 0, 0),
        Err(Status::ERR_BAD_STATE),
        "not locked"
    );
    assert_eq!(op(&mut m, h, ZX_VMO_OP_TRY_LOCK, 0, size, 0, 0), Ok(()));
    assert_eq!(op(&mut m, h, ZX_VMO_OP_UNLOCK, 0, size, 0, 0), Ok(()));
    // LOCK without a whole zx_vmo_lock_state_t: INVALID_ARGS, and the lock is given back.
    for (buf, n, what) in [
        (0, 0, "null, 0"),
        (state, 0, "0 bytes"),
        (0, 32, "null"),
        (state, 8, "8 bytes"),
    ] {
        assert_eq!(
            op(&mut m, h, ZX_VMO_OP_LOCK, 0, size, buf, n),
            E_ARGS,
            "{what}"
        );
        assert_eq!(
            op(&mut m, h, ZX_VMO_OP_UNLOCK, 0, size, 0, 0),
            Err(Status::ERR_BAD_STATE),
            "{what}: not left locked"
        );
    }
    let oor = Err(Status::ERR_OUT_OF_RANGE);
    for (off, len) in [(0, PAGE), (PAGE, 2 * PAGE), (PAGE, PAGE), (0, 2 * size)] {
        for o in [ZX_VMO_OP_LOCK, ZX_VMO_OP_TRY_LOCK, ZX_VMO_OP_UNLOCK] {
            assert_eq!(
                op(&mut m, h, o, off, len, state, 32),
                oor,
                "op {o} {off} {len}"
            );
        }
    }
    // Rights: READ alone or WRITE alone suffices, neither is ACCESS_DENIED.
    let ro = m.dup(h, ZX_RIGHT_READ);
    let wo = m.dup(h, ZX_RIGHT_WRITE);
    for r in [ro, wo] {
        assert_eq!(op(&mut m, r, ZX_VMO_OP_TRY_LOCK, 0, size, 0, 0), Ok(()));
        assert_eq!(op(&mut m, r, ZX_VMO_OP_UNLOCK, 0, size, 0, 0), Ok(()));
        assert_eq!(op(&mut m, r, ZX_VMO_OP_LOCK, 0, size, state, 32), Ok(()));
        assert_eq!(op(&mut m, r, ZX_VMO_OP_UNLOCK, 0, size, 0, 0), Ok(()));
    }
    let none = m.dup(h, ZX_RIGHT_MAP | ZX_RIGHT_DUPLICATE);
    for o in [ZX_VMO_OP_LOCK, ZX_VMO_OP_TRY_LOCK, ZX_VMO_OP_UNLOCK] {
        assert_eq!(
            op(&mut m, none, o, 0, size, state, 32),
            Err(Status::ERR_ACCESS_DENIED),
            "op {o}"
        );
    }
}

/// The cache ops and PREFETCH (vmo.cc `CacheOp`, `CacheOpOutOfRange`, `OpOutOfBounds`,
/// `Prefetch`): rights, the debugging switch for CACHE_INVALIDATE, zero length, range.
#[test]
fn cache_ops_and_prefetch() {
    let mut m = Mock::new();
    let size = 0x8000;
    let h = m.vmo(size, 0);
    let op = |m: &mut Mock, h: u32, o: u32, off: u64, len: u64| {
        m.sys(ZX_SYS_VMO_OP_RANGE, &[h as u64, o as u64, off, len, 0, 0])
    };
    let cache_ops = [
        ZX_VMO_OP_CACHE_SYNC,
        ZX_VMO_OP_CACHE_CLEAN,
        ZX_VMO_OP_CACHE_CLEAN_INVALIDATE,
        ZX_VMO_OP_CACHE_INVALIDATE,
    ];
    let oor = Err(Status::ERR_OUT_OF_RANGE);
    for o in cache_ops {
        for (off, len) in [(0, 1), (1, 1), (0, size), (1, size - 1), (0x5200, 0x1200)] {
            assert_eq!(
                op(&mut m, h, o, off, len),
                Ok(()),
                "op {o} {off:#x} {len:#x}"
            );
        }
        assert_eq!(op(&mut m, h, o, 0, 0), E_ARGS, "op {o}: zero length");
        for (off, len) in [
            (1, size),
            (size, 1),
            (size + 1, 1),
            (u64::MAX - 1, 1),
            (u64::MAX, u64::MAX),
            (PAGE, u64::MAX),
            (0, 2 * size),
        ] {
            assert_eq!(op(&mut m, h, o, off, len), oor, "op {o} {off:#x} {len:#x}");
        }
    }
    let wo = m.dup(h, ZX_RIGHT_WRITE);
    let ro = m.dup(h, ZX_RIGHT_READ);
    let denied = Err(Status::ERR_ACCESS_DENIED);
    for o in [
        ZX_VMO_OP_CACHE_SYNC,
        ZX_VMO_OP_CACHE_CLEAN,
        ZX_VMO_OP_CACHE_CLEAN_INVALIDATE,
        ZX_VMO_OP_PREFETCH,
    ] {
        assert_eq!(op(&mut m, wo, o, 0, PAGE), denied, "op {o} needs READ");
        assert_eq!(op(&mut m, ro, o, 0, PAGE), Ok(()), "op {o}");
    }
    assert_eq!(op(&mut m, ro, ZX_VMO_OP_CACHE_INVALIDATE, 0, PAGE), denied);
    assert_eq!(op(&mut m, wo, ZX_VMO_OP_CACHE_INVALIDATE, 0, PAGE), Ok(()));
    m.debug_syscalls = false;
    assert_eq!(
        op(&mut m, h, ZX_VMO_OP_CACHE_INVALIDATE, 0, PAGE),
        Err(Status::ERR_NOT_SUPPORTED),
        "without the debugging switch"
    );
    assert_eq!(
        op(&mut m, ro, ZX_VMO_OP_CACHE_INVALIDATE, 0, PAGE),
        Err(Status::ERR_NOT_SUPPORTED),
        "the switch before the rights"
    );
    assert_eq!(op(&mut m, h, ZX_VMO_OP_CACHE_CLEAN, 0, PAGE), Ok(()));
    // PREFETCH: any alignment, zero length too; range checked.
    for (off, len) in [(0, PAGE), (0, 0), (4, 2), (PAGE - 1, 2), (size, 0)] {
        assert_eq!(
            op(&mut m, h, ZX_VMO_OP_PREFETCH, off, len),
            Ok(()),
            "{off} {len}"
        );
    }
    for (off, len) in [(0, size + PAGE), (size + PAGE, 0), (u64::MAX, 2)] {
        assert_eq!(
            op(&mut m, h, ZX_VMO_OP_PREFETCH, off, len),
            oor,
            "{off} {len}"
        );
    }
}

/// DECOMMIT with an unaligned offset or size is INVALID_ARGS and changes nothing (vmo.cc
/// `DecommitMisaligned`); the range is checked first (`OpOutOfBounds`).
#[test]
fn decommit_unaligned_changes_nothing_and_zero_length_is_ok() {
    let mut m = Mock::new();
    let h = m.vmo(2 * PAGE, 0);
    let op = |m: &mut Mock, off: u64, len: u64| {
        m.sys(
            ZX_SYS_VMO_OP_RANGE,
            &[h as u64, ZX_VMO_OP_DECOMMIT as u64, off, len, 0, 0],
        )
    };
    assert_eq!(op(&mut m, 0x10, 0x100), E_ARGS, "nothing committed");
    m.poke(BUF, &[0x5a; 2 * 4096]);
    m.sys(ZX_SYS_VMO_WRITE, &[h as u64, BUF as u64, 0, 2 * PAGE])
        .unwrap();
    let free = m.phys.free_frames();
    for (off, len) in [(0x10, 0x100), (0, PAGE + 1), (1, PAGE), (PAGE, 1)] {
        assert_eq!(op(&mut m, off, len), E_ARGS, "{off:#x} + {len:#x}");
    }
    assert_eq!(op(&mut m, 100, 0), Ok(()), "zero length: nothing to align");
    assert_eq!(m.phys.free_frames(), free, "no page freed");
    m.sys(ZX_SYS_VMO_READ, &[h as u64, BUF as u64, 0, 2 * PAGE])
        .unwrap();
    assert!(m.mem.peek(BUF, 2 * 4096).iter().all(|&b| b == 0x5a));
    assert_eq!(
        op(&mut m, 1, 3 * PAGE),
        Err(Status::ERR_OUT_OF_RANGE),
        "range before alignment"
    );
    assert_eq!(op(&mut m, PAGE, PAGE), Ok(()));
    assert_eq!(m.phys.free_frames(), free + 1);
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

/// Runs a series of zx_vmo_read / zx_vmo_write calls (round trips across chunks and pages,
/// uncommitted pages, buffers running into unmapped or read-only memory, no free frame) and
/// returns every status and the buffer's bytes after each call, plus how many no-fault copies
/// the fake user memory did. With `direct` off the fake refuses every no-fault copy (as the
/// kernel's do on a page not present), so each call takes the kernel-buffer path.
fn read_write_series(direct: bool) -> (Vec<(ZxResult, Vec<u8>)>, usize) {
    let mut m = Mock::new();
    if !direct {
        m.mem.frames = None;
    }
    let mut out = Vec::new();
    let h = m.vmo(20 * PAGE, 0);
    let data: Vec<u8> = (0..BUF_LEN).map(|i| (i * 13 % 253) as u8 + 1).collect();
    m.poke(BUF, &data);
    let mut call = |m: &mut Mock, nr: u32, addr: usize, offset: u64, len: usize| {
        let r = m.sys(nr, &[h as u64, addr as u64, offset, len as u64]);
        out.push((r, m.mem.peek(BUF, BUF_LEN)));
        if r.is_err() {
            // What a failed read left differs (see the caller): start again from known bytes.
            m.poke(BUF, &vec![0xee; BUF_LEN]);
        }
    };
    let (rd, wr) = (ZX_SYS_VMO_READ, ZX_SYS_VMO_WRITE);
    call(&mut m, wr, BUF + 3, PAGE + 100, 40 * 1024 + 5);
    call(&mut m, wr, BUF, 0, 10);
    m.poke(BUF, &vec![0xee; BUF_LEN]);
    // Uncommitted pages (11 and up) read as zeros over the old bytes.
    call(&mut m, rd, BUF + 1, 7, BUF_LEN - 1);
    call(&mut m, rd, BUF, 19 * PAGE, PAGE as usize);
    // Into or from a buffer that runs off its mapping, or into read-only memory.
    call(&mut m, rd, BUF + BUF_LEN - 8, 0, 16);
    call(
        &mut m,
        rd,
        BUF + BUF_LEN - 5 * PAGE as usize,
        0,
        6 * PAGE as usize,
    );
    call(
        &mut m,
        wr,
        BUF + BUF_LEN - 4 * PAGE as usize,
        0,
        5 * PAGE as usize,
    );
    call(&mut m, rd, RO, 0, 8);
    call(&mut m, wr, RO, 5, 8);
    call(&mut m, rd, UNMAPPED, 0, 8);
    // Every frame taken: a write to an uncommitted page is NO_MEMORY, from a bad buffer too
    // (both paths commit a page before copying into it, as Zircon's `WriteUser`).
    let big = m.vmo(2 * FRAMES as u64 * PAGE, 0);
    assert_eq!(
        m.sys(
            ZX_SYS_VMO_OP_RANGE,
            &[
                big as u64,
                ZX_VMO_OP_COMMIT as u64,
                0,
                2 * FRAMES as u64 * PAGE,
                0,
                0
            ]
        ),
        Err(Status::ERR_NO_MEMORY)
    );
    call(&mut m, wr, BUF, 18 * PAGE, 8);
    call(&mut m, wr, UNMAPPED, 18 * PAGE, 8);
    call(&mut m, wr, BUF + BUF_LEN - 8, 19 * PAGE - 8, 16);
    // Committed pages still take writes; the whole VMO reads back.
    call(&mut m, wr, BUF + 9, 2 * PAGE + 1, 3 * PAGE as usize);
    call(&mut m, rd, BUF, 0, BUF_LEN);
    (out, m.mem.nofault_copies)
}

#[test]
fn direct_copies_give_what_the_kernel_buffer_path_gives() {
    let (direct, copies) = read_write_series(true);
    let (fallback, none) = read_write_series(false);
    assert!(
        copies > 40,
        "the direct path ran ({copies} no-fault copies)"
    );
    assert_eq!(none, 0, "every no-fault copy refused");
    assert_eq!(direct.len(), fallback.len());
    for (i, (d, f)) in direct.iter().zip(&fallback).enumerate() {
        assert_eq!(d.0, f.0, "call {i}: status");
        // The fake's copies are all or nothing, so a read that faults leaves different bytes
        // behind (the direct path copies page by page up to the fault, the kernel-buffer path
        // nothing of the chunk); the kernel's copies both stop at the faulting byte.
        if d.0.is_ok() {
            let diff = d.1.iter().zip(&f.1).position(|(a, b)| a != b);
            assert_eq!(diff, None, "call {i}: first differing buffer byte");
        }
    }
    let statuses: Vec<ZxResult> = direct.iter().map(|c| c.0).collect();
    let (ok, args, mem) = (Ok(()), E_ARGS, Err(Status::ERR_NO_MEMORY));
    assert_eq!(
        statuses,
        [ok, ok, ok, ok, args, args, args, args, ok, args, mem, mem, mem, ok, ok]
    );
}
