//! Exports the path of the kernel ELF (an artifact dependency built for x86_64-unknown-none).

fn main() {
    let kernel = std::env::var("CARGO_BIN_FILE_KERNEL_kernel")
        .expect("artifact dependency on the kernel binary (bindeps) is missing");
    println!("cargo:rustc-env=KERNEL_ELF={kernel}");
    println!("cargo:rerun-if-env-changed=CARGO_BIN_FILE_KERNEL_kernel");
}
