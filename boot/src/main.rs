//! `boot`: build the disk images and run the kernel in QEMU.
//!
//! ```text
//! boot [run|image] [--uefi] [--kvm] [--gdb] [--smp N] [--timeout SECS]
//!      [--cmdline "mode=run ..."] [--kernel PATH] [PROGRAM [ARGS...]] [-- EXTRA QEMU ARGS...]
//! ```
//! `run` (the default) builds the BIOS and UEFI images, boots one of them (BIOS unless `--uefi`)
//! with TCG (KVM only with `--kvm` or `ZXVM_KVM=1`), streams the serial console with kernel
//! addresses symbolized, and exits 0 only when the kernel reported success. `--smp N` gives the
//! guest N CPUs (QEMU `-smp N`; default `qemu::DEFAULT_CPUS`, 2, or `ZXVM_SMP`); the kernel finds them in ACPI.
//!
//! `run` packs into the ramdisk the program it starts and the programs user code spawns
//! ([`boot::image::Ramdisk::for_boot`]: a smaller image boots faster); `image` packs every user
//! program, for QEMU runs by hand with any `prog=`. The first bare word that is not `run`/`image`
//! names the program the kernel starts (`prog=PROGRAM`, default `demo`); every word after it up
//! to `--` is an argument (`args=ARGS`, the rest of the command line), even one starting with
//! `-`. So options go before the program name: `cargo run -- --timeout 300 utest vmar::`.

use boot::image::{self, Firmware, Ramdisk, TempImage};
use boot::qemu::{self, Event, Exit, Session};
use boot::symbolize::Symbolizer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    command: String,
    /// `--cmdline` was given.
    cmdline_given: bool,
    /// The program to run and its arguments.
    program: Option<(String, Vec<String>)>,
    config: qemu::Config,
    timeout: Duration,
    cmdline: String,
    kernel: PathBuf,
}

const USAGE: &str = "usage: boot [run|image] [--uefi] [--kvm] [--gdb] [--smp N] [--timeout SECS] \
                     [--cmdline STR] [--kernel PATH] [PROGRAM [ARGS...]] [-- QEMU ARGS...]";

fn program_names() -> String {
    boot::USER_PROGRAMS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kernel command line: `--cmdline` (default `mode=run`, plus `debug_syscalls=1` for `utest`
/// and `fuzz`) plus `prog=NAME args=ARGS` for a program named on the command line (`prog=demo`
/// when neither is given). `args=` comes last: user space takes the rest of the line as the
/// arguments.
fn kernel_cmdline(a: &Args) -> String {
    let mut c = a.cmdline.clone();
    match &a.program {
        Some((name, args)) => {
            // The user-mode suite and the fuzzer exercise the debugging syscalls: on, as in their
            // `cargo test` harnesses (unless the line was given).
            if matches!(name.as_str(), "utest" | "fuzz") && !a.cmdline_given {
                c.push_str(" debug_syscalls=1");
            }
            c.push_str(&format!(" prog={name}"));
            if !args.is_empty() {
                c.push_str(&format!(" args={}", args.join(" ")));
            }
        }
        None if !a.cmdline_given => c.push_str(" prog=demo"),
        None => {}
    }
    c
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        command: "run".into(),
        config: qemu::Config::default(),
        timeout: qemu::env_secs("ZXVM_TIMEOUT", 120),
        cmdline: "mode=run".into(),
        cmdline_given: false,
        program: None,
        kernel: PathBuf::from(boot::KERNEL_ELF),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "run" | "image" => a.command = arg,
            "--uefi" => a.config.firmware = Firmware::Uefi,
            "--bios" => a.config.firmware = Firmware::Bios,
            "--kvm" => a.config.kvm = true,
            "--gdb" => a.config.gdb = true,
            "--smp" => {
                let v = it.next().ok_or("--smp needs a CPU count")?;
                a.config.cpus = qemu::parse_cpus(&v)?;
            }
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs seconds")?;
                a.timeout = Duration::from_secs(v.parse().map_err(|_| "bad --timeout")?);
            }
            "--cmdline" => {
                a.cmdline = it.next().ok_or("--cmdline needs a value")?;
                a.cmdline_given = true;
            }
            "--kernel" => a.kernel = it.next().ok_or("--kernel needs a path")?.into(),
            "--" => a.config.extra_args.extend(it.by_ref()),
            "-h" | "--help" => return Err(USAGE.into()),
            other if !other.starts_with('-') => {
                if boot::user_program(other).is_none() {
                    return Err(format!(
                        "unknown program or argument {other:?} (programs: {})\n{USAGE}",
                        program_names()
                    ));
                }
                let mut args = Vec::new();
                for word in it.by_ref() {
                    if word == "--" {
                        a.config.extra_args.extend(it.by_ref());
                        break;
                    }
                    if word.contains(char::is_whitespace) {
                        return Err(format!("program arguments cannot contain spaces: {word:?}"));
                    }
                    args.push(word);
                }
                a.program = Some((other.to_string(), args));
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(64);
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("boot: error: {e}");
            ExitCode::from(70)
        }
    }
}

fn run(args: Args) -> boot::Result<i32> {
    let cmdline = kernel_cmdline(&args);
    let t = Instant::now();
    if args.command == "image" {
        let ramdisk = Ramdisk::with_programs(cmdline.clone())?;
        // `image`: both firmware images at fixed paths, for QEMU runs by hand.
        let out = PathBuf::from(boot::OUT_DIR);
        let bios = out.join("zxkernel-bios.img");
        let uefi = out.join("zxkernel-uefi.img");
        image::build(&args.kernel, &ramdisk, Firmware::Bios, &bios)?;
        image::build(&args.kernel, &ramdisk, Firmware::Uefi, &uefi)?;
        eprintln!(
            "boot: images built in {} ms: {} (BIOS), {} (UEFI); ramdisk cmdline {:?}, programs: {}",
            t.elapsed().as_millis(),
            bios.display(),
            uefi.display(),
            cmdline,
            program_names()
        );
        return Ok(0);
    }
    let ramdisk = Ramdisk::for_boot(cmdline.clone())?;
    // Each run boots its own copy, deleted afterwards: runs from one checkout never collide.
    let temp = TempImage::build(&args.kernel, &ramdisk, args.config.firmware)?;
    eprintln!(
        "boot: image built in {} ms: {} ({:?}); ramdisk cmdline {:?}, programs: {}",
        t.elapsed().as_millis(),
        temp.path().display(),
        args.config.firmware,
        cmdline,
        ramdisk.file_names()
    );
    let image = temp.path();
    let cmd = qemu::command(&args.config, image);
    eprintln!("boot: {cmd:?}");
    let mut session = Session::spawn(&args.config, image)?;
    if args.config.gdb {
        eprintln!(
            "boot: QEMU waits for gdb on localhost:1234; attach with symbols:\n  \
             gdb -q -ex 'add-symbol-file {} -o {:#x}' -ex 'target remote localhost:1234'",
            args.kernel.display(),
            boot::KERNEL_LOAD_BIAS
        );
    }
    let mut sym = Symbolizer::new(&args.kernel);
    let deadline = (!args.config.gdb).then(|| session.started() + args.timeout);
    let mut first_kernel_line = None;
    let exit = loop {
        match session.next(deadline) {
            Event::Line(line) => {
                if first_kernel_line.is_none() && line.starts_with(boot::BANNER_PREFIX) {
                    first_kernel_line = Some(session.started().elapsed());
                }
                println!("{}", sym.annotate(&line));
            }
            Event::Exited(exit) => break exit,
            Event::TimedOut => {
                session.kill();
                eprintln!(
                    "boot: TIMEOUT after {} s (kill); raise with --timeout or ZXVM_TIMEOUT",
                    args.timeout.as_secs()
                );
                return Ok(6);
            }
        }
    };
    if let Some(t) = first_kernel_line {
        eprintln!(
            "boot: QEMU spawn -> first kernel line: {} ms; whole run {} ms",
            t.as_millis(),
            session.started().elapsed().as_millis()
        );
    }
    eprintln!("boot: kernel exit: {}", exit.describe());
    if exit != Exit::Success {
        eprintln!(
            "boot: kernel ELF (for addr2line/gdb): {}",
            args.kernel.display()
        );
    }
    Ok(exit.host_code())
}
