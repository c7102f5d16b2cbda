//! Portable Zircon-style virtual memory: VMOs, the VMAR tree, mappings and page-fault resolution.
//!
//! This crate never names x86_64: it reaches hardware only through the traits in [`arch_traits`]
//! (an MMU for one address space and a physical-page allocator), so every rule is unit-tested on
//! the host against a software MMU.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod gap_tree;
