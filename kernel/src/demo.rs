//! Tests that fail or hang on purpose, to exercise the reporting path. They only run with
//! `demo_failures=1` on the kernel command line (host: `KTEST_DEMO_FAILURES=1`).

use ktest::ktest;

ktest! {
    #[demo]
    fn fails_on_purpose() {
        let answer = core::hint::black_box(41);
        assert_eq!(answer, 42, "demo: this test fails on purpose");
        Ok(())
    }
}

ktest! {
    #[demo]
    fn hangs_on_purpose() {
        loop {
            core::hint::spin_loop();
        }
    }
}
