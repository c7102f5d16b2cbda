//! placeholder
#![no_std]
#![no_main]
zx::entry!(main);
fn main(_s: zx::rt::Startup) -> i64 {
    0
}
