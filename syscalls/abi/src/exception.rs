//! Channels, exceptions and thread state: the constants and records of
//! `zircon/syscalls/exception.h`, `zircon/syscalls/debug.h`, `zircon/syscalls/object.h` and
//! `zircon/types.h` that `zx_channel_*`, `zx_task_create_exception_channel`,
//! `zx_exception_get_*`, `zx_thread_{read,write}_state` and `ZX_INFO_THREAD*` use.
//!
//! Records are `#[repr(C)]` with Zircon's layout; their [`Wire`] encodings write every field at
//! its C offset (checked in the tests with `core::mem::offset_of!`).

use crate::wire::{Reader, Wire, Writer};

/// Channel limits and options (`zircon/types.h`).
pub mod channel {
    /// Most bytes in one channel message (`ZX_CHANNEL_MAX_MSG_BYTES`).
    pub const ZX_CHANNEL_MAX_MSG_BYTES: u32 = 65536;
    /// Most handles in one channel message (`ZX_CHANNEL_MAX_MSG_HANDLES`).
    pub const ZX_CHANNEL_MAX_MSG_HANDLES: u32 = 64;
    /// `zx_channel_read` option: a message too large for the buffers is dropped (its handles
    /// closed) instead of staying queued.
    pub const ZX_CHANNEL_READ_MAY_DISCARD: u32 = 1;
    /// `zx_channel_write` option: `bytes` is an array of `zx_channel_iovec_t` (not supported
    /// here).
    pub const ZX_CHANNEL_WRITE_USE_IOVEC: u32 = 2;
}

/// `zx_excp_type_t` values (`ZX_PKT_TYPE_EXCEPTION(n) = 0x8 | n << 8`).
pub mod excp {
    /// A general exception (#GP and everything without a more specific type).
    pub const ZX_EXCP_GENERAL: u32 = 0x008;
    /// A page fault the kernel could not resolve.
    pub const ZX_EXCP_FATAL_PAGE_FAULT: u32 = 0x108;
    /// An undefined instruction (#UD).
    pub const ZX_EXCP_UNDEFINED_INSTRUCTION: u32 = 0x208;
    /// A software breakpoint (`int3`).
    pub const ZX_EXCP_SW_BREAKPOINT: u32 = 0x308;
    /// A hardware breakpoint / single step (#DB).
    pub const ZX_EXCP_HW_BREAKPOINT: u32 = 0x408;
    /// An unaligned access.
    pub const ZX_EXCP_UNALIGNED_ACCESS: u32 = 0x508;
}

/// `ZX_PROP_EXCEPTION_STATE` values: what closing the exception handle does.
pub mod exception_state {
    /// Pass the exception to the next handler (the default).
    pub const ZX_EXCEPTION_STATE_TRY_NEXT: u32 = 0;
    /// Resume the thread (with its possibly rewritten registers).
    pub const ZX_EXCEPTION_STATE_HANDLED: u32 = 1;
    /// End the thread.
    pub const ZX_EXCEPTION_STATE_THREAD_EXIT: u32 = 2;
    /// `ZX_PROP_EXCEPTION_STRATEGY`: first-chance handling (the only one without a debugger).
    pub const ZX_EXCEPTION_STRATEGY_FIRST_CHANCE: u32 = 0;
    /// `ZX_PROP_EXCEPTION_STRATEGY`: second-chance handling (debugger only).
    pub const ZX_EXCEPTION_STRATEGY_SECOND_CHANCE: u32 = 1;
    /// `zx_task_create_exception_channel` option: the task's debugger channel.
    pub const ZX_EXCEPTION_CHANNEL_DEBUGGER: u32 = 1;
    /// `zx_info_thread_t::wait_exception_channel_type`: not waiting.
    pub const ZX_EXCEPTION_CHANNEL_TYPE_NONE: u32 = 0;
    /// Waiting on a debugger channel.
    pub const ZX_EXCEPTION_CHANNEL_TYPE_DEBUGGER: u32 = 1;
    /// Waiting on the thread's channel.
    pub const ZX_EXCEPTION_CHANNEL_TYPE_THREAD: u32 = 2;
    /// Waiting on the process's channel.
    pub const ZX_EXCEPTION_CHANNEL_TYPE_PROCESS: u32 = 3;
}

/// `zx_info_thread_t::state` values (`ZX_THREAD_STATE_*`).
pub mod thread_state {
    /// Created, not started.
    pub const ZX_THREAD_STATE_NEW: u32 = 0x0000;
    /// Running or runnable.
    pub const ZX_THREAD_STATE_RUNNING: u32 = 0x0001;
    /// Suspended.
    pub const ZX_THREAD_STATE_SUSPENDED: u32 = 0x0002;
    /// Blocked (in a wait).
    pub const ZX_THREAD_STATE_BLOCKED: u32 = 0x0003;
    /// Dying.
    pub const ZX_THREAD_STATE_DYING: u32 = 0x0004;
    /// Dead.
    pub const ZX_THREAD_STATE_DEAD: u32 = 0x0005;
    /// Blocked in an exception, waiting for a handler.
    pub const ZX_THREAD_STATE_BLOCKED_EXCEPTION: u32 = 0x0103;
    /// Blocked in `zx_object_wait_one`.
    pub const ZX_THREAD_STATE_BLOCKED_WAIT_ONE: u32 = 0x0603;

    /// `zx_thread_read_state` / `write_state` kind: the general registers.
    pub const ZX_THREAD_STATE_GENERAL_REGS: u32 = 0;
    /// Floating-point registers (not supported here).
    pub const ZX_THREAD_STATE_FP_REGS: u32 = 1;
    /// Vector registers (not supported here).
    pub const ZX_THREAD_STATE_VECTOR_REGS: u32 = 2;
    /// Debug registers (not supported here).
    pub const ZX_THREAD_STATE_DEBUG_REGS: u32 = 4;
    /// Single-step flag (not supported here).
    pub const ZX_THREAD_STATE_SINGLE_STEP: u32 = 5;
}

/// `zx_exception_info_t` (24 bytes): the bytes of an exception channel message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExceptionInfo {
    /// Koid of the faulting thread's process.
    pub pid: u64,
    /// Koid of the faulting thread.
    pub tid: u64,
    /// `ZX_EXCP_*`.
    pub r#type: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
}

impl Wire for ExceptionInfo {
    const SIZE: usize = 24;
    const ALIGN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        let mut w = Writer::new(out, Self::SIZE);
        w.put(self.pid).put(self.tid).put(self.r#type).pad(4);
    }
    fn decode(bytes: &[u8]) -> Self {
        let _ = &bytes[..Self::SIZE];
        let mut r = Reader::new(bytes);
        ExceptionInfo {
            pid: r.get(),
            tid: r.get(),
            r#type: r.get(),
            padding1: [0; 4],
        }
    }
}

/// `zx_exception_report_t` (40 bytes; `ZX_INFO_THREAD_EXCEPTION_REPORT`): header `{size, type}`,
/// the x86_64 arm of the arch context `{vector, err_code, cr2}`, then `synth_code` /
/// `synth_data`. For a page fault Zircon's x86 fault handler puts the fault's `zx_status_t` in
/// `synth_code` (`x86_pfe_handler`: `.user_synth_code = pf_err`) and the address in `cr2`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExceptionReport {
    /// `header.size`: the size of the report in bytes.
    pub size: u32,
    /// `header.type`: `ZX_EXCP_*`.
    pub r#type: u32,
    /// Exception vector.
    pub vector: u64,
    /// The CPU's error code.
    pub err_code: u64,
    /// The faulting address of a page fault (0 otherwise).
    pub cr2: u64,
    /// For a page fault: the `zx_status_t` of the failed resolution (as `u32`).
    pub synth_code: u32,
    /// Extra data, 0.
    pub synth_data: u32,
}

impl ExceptionReport {
    /// The size of the report (version 2, with `synth_code` / `synth_data`).
    pub const SIZE_V2: u32 = 40;
    /// The size of the version-1 report (`ZX_INFO_THREAD_EXCEPTION_REPORT_V1`: no synth fields).
    pub const SIZE_V1: u32 = 32;
}

impl Wire for ExceptionReport {
    const SIZE: usize = 40;
    const ALIGN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        let mut w = Writer::new(out, Self::SIZE);
        w.put(self.size)
            .put(self.r#type)
            .put(self.vector)
            .put(self.err_code)
            .put(self.cr2)
            .put(self.synth_code)
            .put(self.synth_data);
    }
    fn decode(bytes: &[u8]) -> Self {
        let _ = &bytes[..Self::SIZE];
        let mut r = Reader::new(bytes);
        ExceptionReport {
            size: r.get(),
            r#type: r.get(),
            vector: r.get(),
            err_code: r.get(),
            cr2: r.get(),
            synth_code: r.get(),
            synth_data: r.get(),
        }
    }
}

/// `zx_exception_report_v1_t` (32 bytes): the first 32 bytes of [`ExceptionReport`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExceptionReportV1(pub ExceptionReport);

impl Wire for ExceptionReportV1 {
    const SIZE: usize = 32;
    const ALIGN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        let mut full = [0u8; ExceptionReport::SIZE];
        let mut r = self.0;
        r.size = ExceptionReport::SIZE_V1;
        r.encode(&mut full);
        out[..Self::SIZE].copy_from_slice(&full[..Self::SIZE]);
    }
    fn decode(bytes: &[u8]) -> Self {
        let mut full = [0u8; ExceptionReport::SIZE];
        full[..Self::SIZE].copy_from_slice(&bytes[..Self::SIZE]);
        ExceptionReportV1(ExceptionReport::decode(&full))
    }
}

/// `zx_thread_state_general_regs_t` for x86_64 (176 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct GeneralRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub fs_base: u64,
    pub gs_base: u64,
}

impl GeneralRegs {
    /// The fields in layout order.
    pub fn to_array(&self) -> [u64; 20] {
        [
            self.rax,
            self.rbx,
            self.rcx,
            self.rdx,
            self.rsi,
            self.rdi,
            self.rbp,
            self.rsp,
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
            self.rip,
            self.rflags,
            self.fs_base,
            self.gs_base,
        ]
    }

    /// The inverse of [`GeneralRegs::to_array`].
    pub fn from_array(a: [u64; 20]) -> Self {
        let [rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15, rip, rflags, fs_base, gs_base] =
            a;
        GeneralRegs {
            rax,
            rbx,
            rcx,
            rdx,
            rsi,
            rdi,
            rbp,
            rsp,
            r8,
            r9,
            r10,
            r11,
            r12,
            r13,
            r14,
            r15,
            rip,
            rflags,
            fs_base,
            gs_base,
        }
    }
}

impl Wire for GeneralRegs {
    const SIZE: usize = 160;
    const ALIGN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        let mut w = Writer::new(out, Self::SIZE);
        for v in self.to_array() {
            w.put(v);
        }
    }
    fn decode(bytes: &[u8]) -> Self {
        let _ = &bytes[..Self::SIZE];
        let mut r = Reader::new(bytes);
        let mut a = [0u64; 20];
        for v in &mut a {
            *v = r.get();
        }
        GeneralRegs::from_array(a)
    }
}

/// The RFLAGS bits user space may change through `zx_thread_write_state`: CF, PF, AF, ZF, SF,
/// DF, OF, AC, ID. (Zircon's `X86_FLAGS_USER` also has TF and NT; we leave single-stepping and
/// nested tasks out: no debug-exception support here.)
pub const X86_FLAGS_USER: u64 = (1 << 0)
    | (1 << 2)
    | (1 << 4)
    | (1 << 6)
    | (1 << 7)
    | (1 << 10)
    | (1 << 11)
    | (1 << 18)
    | (1 << 21);

/// `zx_info_thread_t` (72 bytes): state, exception channel type, CPU affinity mask.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoThread {
    /// `ZX_THREAD_STATE_*`.
    pub state: u32,
    /// `ZX_EXCEPTION_CHANNEL_TYPE_*` while blocked in an exception.
    pub wait_exception_channel_type: u32,
    /// `zx_cpu_set_t`: CPU 0 only.
    pub cpu_affinity_mask: [u64; 8],
}

impl Wire for InfoThread {
    const SIZE: usize = 72;
    const ALIGN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        let mut w = Writer::new(out, Self::SIZE);
        w.put(self.state).put(self.wait_exception_channel_type);
        for m in self.cpu_affinity_mask {
            w.put(m);
        }
    }
    fn decode(bytes: &[u8]) -> Self {
        let _ = &bytes[..Self::SIZE];
        let mut r = Reader::new(bytes);
        let state = r.get();
        let wait_exception_channel_type = r.get();
        let mut cpu_affinity_mask = [0u64; 8];
        for m in &mut cpu_affinity_mask {
            *m = r.get();
        }
        InfoThread {
            state,
            wait_exception_channel_type,
            cpu_affinity_mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_c() {
        assert_eq!(size_of::<ExceptionInfo>(), ExceptionInfo::SIZE);
        assert_eq!(offset_of!(ExceptionInfo, r#type), 16);
        assert_eq!(size_of::<ExceptionReport>(), ExceptionReport::SIZE);
        assert_eq!(offset_of!(ExceptionReport, cr2), 24);
        assert_eq!(offset_of!(ExceptionReport, synth_code), 32);
        assert_eq!(size_of::<GeneralRegs>(), GeneralRegs::SIZE);
        assert_eq!(offset_of!(GeneralRegs, rip), 128);
        assert_eq!(offset_of!(GeneralRegs, gs_base), 152);
        assert_eq!(size_of::<InfoThread>(), InfoThread::SIZE);
    }

    #[test]
    fn round_trips() {
        let regs = GeneralRegs::from_array(core::array::from_fn(|i| i as u64 * 3 + 1));
        let mut buf = [0u8; GeneralRegs::SIZE];
        regs.encode(&mut buf);
        assert_eq!(GeneralRegs::decode(&buf), regs);
        assert_eq!(u64::decode(&buf[128..]), regs.rip);
        let report = ExceptionReport {
            size: 40,
            r#type: excp::ZX_EXCP_FATAL_PAGE_FAULT,
            vector: 14,
            err_code: 6,
            cr2: 0x1234_5000,
            synth_code: (-25i32) as u32,
            synth_data: 0,
        };
        let mut buf = [0u8; 40];
        report.encode(&mut buf);
        assert_eq!(ExceptionReport::decode(&buf), report);
        let mut v1 = [0u8; 32];
        ExceptionReportV1(report).encode(&mut v1);
        assert_eq!(u32::decode(&v1), 32);
        assert_eq!(u64::decode(&v1[24..]), 0x1234_5000);
        let info = ExceptionInfo {
            pid: 5,
            tid: 7,
            r#type: excp::ZX_EXCP_GENERAL,
            padding1: [0; 4],
        };
        let mut buf = [0u8; 24];
        info.encode(&mut buf);
        assert_eq!(ExceptionInfo::decode(&buf), info);
    }
}
