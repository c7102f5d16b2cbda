//! User side of the zx syscalls.
#![cfg_attr(not(test), no_std)]
