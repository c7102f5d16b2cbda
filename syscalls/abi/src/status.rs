//! `zx_status_t`: one status type with Zircon's numeric values, used end to end.

use core::fmt;

/// A Zircon status code. `Status::OK` is success; every other value is an error.
///
/// The representation is the raw `zx_status_t` (an `i32`), so it crosses the syscall boundary
/// unchanged and unknown values coming back from the kernel are kept, not lost.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Status(i32);

macro_rules! statuses {
    ($( $(#[$doc:meta])* $name:ident = $value:expr, )*) => {
        impl Status {
            $( $(#[$doc])* pub const $name: Status = Status($value); )*

            /// The Zircon name of this status (`ZX_ERR_NO_MEMORY`), or `None` for an unknown value.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(concat!("ZX_", stringify!($name))), )*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    /// Success.
    OK = 0,
    /// An internal error.
    ERR_INTERNAL = -1,
    /// The operation is not implemented, supported or enabled.
    ERR_NOT_SUPPORTED = -2,
    /// The system ran out of a resource other than memory (for VMARs: address space).
    ERR_NO_RESOURCES = -3,
    /// The system ran out of memory.
    ERR_NO_MEMORY = -4,
    /// The syscall was interrupted and should be retried (internal).
    ERR_INTERNAL_INTR_RETRY = -6,
    /// An argument is invalid.
    ERR_INVALID_ARGS = -10,
    /// A handle is not valid.
    ERR_BAD_HANDLE = -11,
    /// A handle refers to an object of the wrong type.
    ERR_WRONG_TYPE = -12,
    /// The syscall number is invalid.
    ERR_BAD_SYSCALL = -13,
    /// An argument is outside the valid range.
    ERR_OUT_OF_RANGE = -14,
    /// A caller-provided buffer is too small.
    ERR_BUFFER_TOO_SMALL = -15,
    /// The object is not in a state that allows the operation.
    ERR_BAD_STATE = -20,
    /// The time limit passed.
    ERR_TIMED_OUT = -21,
    /// The operation would block.
    ERR_SHOULD_WAIT = -22,
    /// The operation was canceled.
    ERR_CANCELED = -23,
    /// The other end was closed.
    ERR_PEER_CLOSED = -24,
    /// The requested entity was not found.
    ERR_NOT_FOUND = -25,
    /// The entity already exists (for VMARs: the range overlaps).
    ERR_ALREADY_EXISTS = -26,
    /// The entity is already bound.
    ERR_ALREADY_BOUND = -27,
    /// The subject is unavailable.
    ERR_UNAVAILABLE = -28,
    /// The caller lacks the rights.
    ERR_ACCESS_DENIED = -30,
    /// An I/O error.
    ERR_IO = -40,
    /// A path is invalid.
    ERR_BAD_PATH = -50,
    /// Stop iterating.
    ERR_STOP = -61,
    /// Go on to the next item.
    ERR_NEXT = -62,
    /// Asynchronous completion.
    ERR_ASYNC = -63,
}

impl Status {
    /// Wraps a raw `zx_status_t`.
    pub const fn from_raw(raw: i32) -> Status {
        Status(raw)
    }

    /// The raw `zx_status_t`.
    pub const fn into_raw(self) -> i32 {
        self.0
    }

    /// `Ok(())` for `Status::OK`, `Err(self)` otherwise.
    pub const fn ok(self) -> Result<(), Status> {
        if self.0 == 0 {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Collapses a result into the status a syscall returns.
    pub fn from_result(result: Result<(), Status>) -> Status {
        match result {
            Ok(()) => Status::OK,
            Err(status) => status,
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Status({})", self.0),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn values_match_zircon_errors_h() {
        assert_eq!(Status::OK.into_raw(), 0);
        assert_eq!(Status::ERR_NO_MEMORY.into_raw(), -4);
        assert_eq!(Status::ERR_INVALID_ARGS.into_raw(), -10);
        assert_eq!(Status::ERR_BAD_STATE.into_raw(), -20);
        assert_eq!(Status::ERR_NOT_FOUND.into_raw(), -25);
        assert_eq!(Status::ERR_ACCESS_DENIED.into_raw(), -30);
    }

    #[test]
    fn names_and_unknown_values() {
        assert_eq!(
            Status::ERR_ALREADY_EXISTS.name(),
            Some("ZX_ERR_ALREADY_EXISTS")
        );
        assert_eq!(format!("{:?}", Status::from_raw(-999)), "Status(-999)");
        assert_eq!(Status::OK.ok(), Ok(()));
        assert_eq!(Status::ERR_IO.ok(), Err(Status::ERR_IO));
    }
}
