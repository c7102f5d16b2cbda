//! `child`: started by `demo` (and the tests). Does a little VM work in its own address space —
//! creates a VMO, maps it, touches it, reads it back through the VMO, unmaps it — prints what it
//! did, and exits with the code it was given as arg2. Started as the first process
//! (`cargo run -- child N`), it exits with its first argument instead.
#![no_std]
#![no_main]

use abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use zx::rt::Startup;
use zx::{println, Vmo};

zx::entry!(main);

fn main(mut startup: Startup) -> i64 {
    let mut code = startup.arg2 as i64;
    if startup.arg1.is_valid() {
        // The first process gets the ramdisk: take the code from the command line's arguments.
        let vmo = Vmo::from(core::mem::replace(&mut startup.arg1, zx::Handle::invalid()));
        if let Ok(rd) = zx::bootfs::Ramdisk::map(&vmo, &startup.root_vmar) {
            code = rd
                .args()
                .split(' ')
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
        }
    }
    match vm_work(&startup) {
        Ok(sum) => println!(
            "child: mapped, touched and unmapped 4 pages (checksum {sum:#x}); exiting with {code}"
        ),
        Err(e) => {
            println!("child: VM work failed: {e:?}");
            return -1;
        }
    }
    code
}

fn vm_work(startup: &Startup) -> zx::ZxResult<u64> {
    const LEN: usize = 4 * 4096;
    let vmo = Vmo::create(LEN as u64, 0)?;
    let addr = startup
        .root_vmar
        .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &vmo, 0, LEN)?;
    for page in 0..4 {
        let p = (addr + page * 4096) as *mut u64;
        // SAFETY: `p` is inside the read-write mapping just created, 8-aligned, and nothing else
        // refers to that memory.
        unsafe { p.write_volatile(0x1000 + page as u64) };
    }
    let mut sum = 0u64;
    for page in 0..4 {
        let mut word = [0u8; 8];
        vmo.read(&mut word, (page * 4096) as u64)?;
        sum += u64::from_le_bytes(word);
    }
    // SAFETY: no reference into the mapping outlives this point.
    unsafe { startup.root_vmar.unmap(addr, LEN)? };
    Ok(sum)
}
