//! Exports the path of the kernel ELF and of every user program (artifact dependencies built for
//! x86_64-unknown-none): `KERNEL_ELF`, and `$OUT_DIR/programs.rs` with `USER_PROGRAMS`.

/// User programs packed into the ramdisk: (ramdisk name, artifact dependency name).
const PROGRAMS: &[&str] = &["demo", "child", "utest", "victim", "fuzz", "vmbench"];

fn main() {
    let kernel = std::env::var("CARGO_BIN_FILE_KERNEL_kernel")
        .expect("artifact dependency on the kernel binary (bindeps) is missing");
    println!("cargo:rustc-env=KERNEL_ELF={kernel}");
    println!("cargo:rerun-if-env-changed=CARGO_BIN_FILE_KERNEL_kernel");

    let mut out = String::from(
        "/// User programs: (name in the ramdisk, path of the ELF with debug info).\n\
         pub const USER_PROGRAMS: &[(&str, &str)] = &[\n",
    );
    for name in PROGRAMS {
        let var = format!("CARGO_BIN_FILE_{}_{name}", name.to_uppercase());
        let path = std::env::var(&var)
            .unwrap_or_else(|_| panic!("artifact dependency on user program {name} is missing"));
        println!("cargo:rerun-if-env-changed={var}");
        out.push_str(&format!("    ({name:?}, {path:?}),\n"));
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("programs.rs");
    std::fs::write(dest, out).unwrap();
}
