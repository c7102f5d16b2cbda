//! The two in-QEMU suites of `suites` once more with one CPU: `suites` boots its guests with the
//! default count (`boot::qemu::DEFAULT_CPUS`, or `ZXVM_SMP`), this target with a single vCPU
//! whatever the environment says, so the one-CPU kernel (no other CPU to shoot down, every
//! wake-up on the same CPU) stays tested by `cargo test`. Same test names, under this target:
//! `cargo test --test suites_1cpu -- utest::vmar::`.

fn main() {
    let one_cpu = |mut opts: tests::Options| {
        opts.qemu.cpus = 1;
        opts
    };
    tests::libtest_main_suites(vec![
        one_cpu(tests::Options::from_env()),
        one_cpu(tests::Options::utest_from_env()),
    ])
}
