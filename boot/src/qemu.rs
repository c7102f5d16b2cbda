//! Running an image in QEMU: command line, serial lines, timeouts, exit-code mapping.

use crate::image::Firmware;
use crate::Result;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The QEMU binary we run.
pub const QEMU: &str = "qemu-system-x86_64";
/// Default OVMF firmware (Debian package `ovmf`); override with `ZXVM_OVMF`.
pub const OVMF: &str = "/usr/share/qemu/OVMF.fd";

/// How the kernel ended the run, decoded from QEMU's exit status (isa-debug-exit writes `v`,
/// QEMU exits with `(v << 1) | 1`; see `arch::qemu::ExitCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Kernel reported success (QEMU status 33).
    Success,
    /// Kernel reported a failure, e.g. a failed test (35).
    Failed,
    /// Kernel panicked (37).
    Panic,
    /// Unexpected CPU exception (39).
    Exception,
    /// QEMU exited 0: the guest reset or shut down (with `-no-reboot` a triple fault ends here).
    Reset,
    /// Any other status: QEMU itself failed (bad arguments, missing firmware...).
    Qemu(Option<i32>),
}

impl Exit {
    /// Decodes QEMU's exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        match status.code() {
            Some(33) => Exit::Success,
            Some(35) => Exit::Failed,
            Some(37) => Exit::Panic,
            Some(39) => Exit::Exception,
            Some(0) => Exit::Reset,
            other => Exit::Qemu(other),
        }
    }

    /// The exit status `boot` itself returns for this outcome (0 only on success).
    pub fn host_code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Panic => 2,
            Exit::Exception => 3,
            Exit::Reset => 4,
            Exit::Qemu(_) => 5,
        }
    }

    /// Human description.
    pub fn describe(self) -> String {
        match self {
            Exit::Success => "success".into(),
            Exit::Failed => "failure reported by the kernel".into(),
            Exit::Panic => "kernel panic".into(),
            Exit::Exception => "unexpected CPU exception".into(),
            Exit::Reset => "guest reset or shut down (triple fault?)".into(),
            Exit::Qemu(c) => format!("QEMU failed (status {c:?})"),
        }
    }
}

/// How to start QEMU.
#[derive(Debug, Clone)]
pub struct Config {
    /// BIOS or UEFI.
    pub firmware: Firmware,
    /// Use KVM instead of TCG (opt-in: `ZXVM_KVM=1` or `--kvm`).
    pub kvm: bool,
    /// Start with `-s -S` (gdb server on :1234, CPU stopped).
    pub gdb: bool,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs (`-smp N`, passed only when above 1; `--smp N` or `ZXVM_SMP`, default
    /// [`DEFAULT_CPUS`]).
    pub cpus: u32,
    /// Extra arguments appended verbatim.
    pub extra_args: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            firmware: Firmware::Bios,
            kvm: env_flag("ZXVM_KVM"),
            gdb: false,
            memory_mib: 128,
            cpus: std::env::var("ZXVM_SMP")
                .ok()
                .and_then(|v| parse_cpus(&v).ok())
                .unwrap_or(DEFAULT_CPUS),
            extra_args: Vec::new(),
        }
    }
}

/// Virtual CPUs of a guest unless `--smp` or `ZXVM_SMP` says otherwise. Picked by measurement
/// on our 2-core machines (multi-threaded TCG, one vCPU per host thread; README "SMP figures"):
/// 2 runs threads in parallel at no cost to the suites' own speed beyond the host-core budget
/// ([`host_cpus`]); 4 or 8 vCPUs on 2 cores are descheduled with interrupts off.
pub const DEFAULT_CPUS: u32 = 2;

/// Most virtual CPUs `--smp` accepts: the kernel's per-CPU table (`arch::percpu::MAX_CPUS`).
pub const MAX_CPUS: u32 = 64;

/// Parses a CPU count for `-smp`: 1..=[`MAX_CPUS`].
pub fn parse_cpus(s: &str) -> std::result::Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_CPUS).contains(&n) => Ok(n),
        _ => Err(format!("bad CPU count {s:?}: want 1..={MAX_CPUS}")),
    }
}

/// True when the environment variable is set to something other than empty/`0`.
pub fn env_flag(name: &str) -> bool {
    matches!(std::env::var(name), Ok(v) if !v.is_empty() && v != "0")
}

/// `setpriv` (util-linux) starts QEMU with a parent-death signal, so a `boot` (or test harness)
/// that is killed by any signal, SIGKILL included, takes its QEMU with it.
const SETPRIV: &str = "setpriv";

/// Whether [`SETPRIV`] can be run here (checked once per process).
fn have_setpriv() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| {
        Command::new(SETPRIV)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Checks that QEMU is installed, with one actionable line when it is not.
pub fn check_installed() -> Result<()> {
    match Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{QEMU} not found: install the Debian package qemu-system-x86 \
             (apt-get install -y qemu-system-x86)"
        )
        .into()),
    }
}

/// The full QEMU command line for `image`.
///
/// The machine is `q35`: its AHCI controller moves the disk by DMA, where the default `pc`
/// machine's IDE disk moves every word through an emulated port read. The BIOS loader reads the
/// kernel and the ramdisk through real-mode disk calls, so under TCG the same image boots in
/// about half the time (whole `cargo run` ~2.0 s vs ~4.5 s, see README "Measured figures").
/// The drive is `snapshot=on`: the guest never writes the image, and runs never contend for it.
/// QEMU runs under `setpriv --pdeathsig KILL` where util-linux is present.
pub fn command(config: &Config, image: &Path) -> Command {
    let mut c = if have_setpriv() {
        let mut c = Command::new(SETPRIV);
        c.args(["--pdeathsig", "KILL", "--", QEMU]);
        c
    } else {
        Command::new(QEMU)
    };
    c.args(["-machine", "q35", "-nic", "none"])
        .arg("-drive")
        .arg(format!("format=raw,snapshot=on,file={}", image.display()))
        .args(["-serial", "stdio", "-display", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-m", &format!("{}M", config.memory_mib)]);
    if config.cpus > 1 {
        c.args(["-smp", &config.cpus.to_string()]);
    }
    if config.firmware == Firmware::Uefi {
        let ovmf = std::env::var("ZXVM_OVMF").unwrap_or_else(|_| OVMF.into());
        c.args(["-bios", &ovmf]);
    }
    if config.kvm {
        c.args(["-accel", "kvm", "-cpu", "host"]);
    } else {
        // qemu64 plus SMEP and SMAP (TCG emulates both), so the kernel's user-memory
        // protections are exercised by every run.
        c.args(["-accel", "tcg", "-cpu", "qemu64,+smep,+smap"]);
    }
    if config.gdb {
        c.args(["-s", "-S"]);
    }
    c.args(&config.extra_args);
    c
}

/// What [`Session::next`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One serial line (without the line terminator).
    Line(String),
    /// QEMU exited.
    Exited(Exit),
    /// The deadline passed first.
    TimedOut,
}

/// A running QEMU whose serial console is read line by line.
pub struct Session {
    child: Child,
    lines: Receiver<String>,
    started: Instant,
    image: PathBuf,
    done: Option<Exit>,
    /// The host cores this guest's vCPUs hold until QEMU has exited.
    _cores: HostCores,
}

/// Host cores the guests of this process may keep busy at once: `ZXVM_HOST_CPUS`, or what
/// `std::thread::available_parallelism` reports.
pub fn host_cpus() -> usize {
    std::env::var("ZXVM_HOST_CPUS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1)
}

/// Cores of [`host_cpus`] held by running guests, and the condition a waiting spawn sleeps on.
static CORES_IN_USE: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A share of the host's cores, held while a guest runs: [`Session::spawn`] waits until the
/// guest's vCPUs fit beside the running guests' (a guest with more vCPUs than the host has
/// cores waits until it can run alone). A guest whose vCPUs outnumber the free cores is
/// descheduled with interrupts off, spin-waiting for a vCPU the host parked: the kernel's
/// interrupts-off bounds then measure the host, and 2 guests of 2 vCPUs on 2 cores ran the user
/// suite in 309 s instead of 63 s one after the other. Tests that boot guests in parallel
/// threads (libtest) so never oversubscribe the host.
struct HostCores(usize);

impl HostCores {
    fn take(vcpus: u32) -> Self {
        let want = (vcpus as usize).clamp(1, host_cpus());
        let (lock, cv) = &CORES_IN_USE;
        let mut used = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *used + want > host_cpus() {
            used = cv.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += want;
        Self(want)
    }
}

impl Drop for HostCores {
    fn drop(&mut self) {
        let (lock, cv) = &CORES_IN_USE;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) -= self.0;
        cv.notify_all();
    }
}

impl Session {
    /// Starts QEMU on `image` with stdout (the serial console) piped.
    pub fn spawn(config: &Config, image: &Path) -> Result<Self> {
        check_installed()?;
        let cores = HostCores::take(config.cpus);
        let mut cmd = command(config, image);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("starting {QEMU}: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let s = String::from_utf8_lossy(&buf);
                        let s = s.trim_end_matches(['\n', '\r']).replace('\r', "");
                        if tx.send(s).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Self {
            child,
            lines: rx,
            started,
            image: image.to_path_buf(),
            done: None,
            _cores: cores,
        })
    }

    /// When QEMU was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The image being run.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// The next serial line, QEMU's exit (after all output was read), or a timeout at `deadline`
    /// (`None`: wait forever).
    pub fn next(&mut self, deadline: Option<Instant>) -> Event {
        if let Some(exit) = self.done {
            return Event::Exited(exit);
        }
        let r = match deadline {
            None => self
                .lines
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => self
                .lines
                .recv_timeout(d.saturating_duration_since(Instant::now())),
        };
        match r {
            Ok(line) => Event::Line(line),
            Err(RecvTimeoutError::Timeout) => Event::TimedOut,
            Err(RecvTimeoutError::Disconnected) => {
                let exit = match self.child.wait() {
                    Ok(status) => Exit::from_status(status),
                    Err(_) => Exit::Qemu(None),
                };
                self.done = Some(exit);
                Event::Exited(exit)
            }
        }
    }

    /// Kills QEMU (after a timeout).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.done.is_none() {
            self.kill();
        }
    }
}

/// A `Duration` from an environment variable in seconds, or `default`.
pub fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_count_reaches_qemu_as_smp() {
        assert_eq!(parse_cpus("4"), Ok(4));
        assert_eq!(parse_cpus(" 64 "), Ok(64));
        for bad in ["0", "65", "-1", "four", ""] {
            assert!(parse_cpus(bad).is_err(), "{bad:?} accepted");
        }
        let args = |cpus| {
            let config = Config {
                cpus,
                ..Config::default()
            };
            command(&config, Path::new("x.img"))
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let four = args(4);
        let at = four.iter().position(|a| a == "-smp").expect("-smp passed");
        assert_eq!(four[at + 1], "4");
        // One CPU: QEMU's default, the command line stays as documented.
        assert!(!args(1).iter().any(|a| a == "-smp"));
    }
}
