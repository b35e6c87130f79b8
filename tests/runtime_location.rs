//! Where the OpenVINO runtime is loaded from (`OVLVA_OPENVINO_LIB`), and the error without it.
//! The library is loaded once per process, so each case re-runs this test binary as a child
//! that runs a pipeline and prints what happened.

mod common;

use std::process::Command;

const CHILD: &str = "OVLVA_RUNTIME_TEST_CHILD";

/// The child's side: runs one white frame through the tiny SSD model and reports.
#[test]
fn child_pipeline() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let r = common::run(&format!(
        "videotestsrc num-buffers=1 pattern=white ! video/x-raw,format=RGB,width=64,height=64 \
         ! ovinfer model={} ! appsink name=sink",
        common::tiny("tiny_ssd.onnx")
    ));
    println!("FRAMES {}", r.frames.len());
    println!(
        "ROIS {}",
        r.frames.iter().map(|f| f.rois.len()).sum::<usize>()
    );
    println!("ERRORS {}", r.error_text().replace('\n', " "));
}

fn run_child(openvino_lib: &std::ffi::OsStr) -> String {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_pipeline",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("OVLVA_OPENVINO_LIB", openvino_lib)
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn missing_runtime_is_reported_with_the_fix() {
    let out = run_child("/nonexistent/libopenvino_c.so".as_ref());
    assert!(out.contains("FRAMES 0"), "{out}");
    assert!(
        out.contains("OpenVINO C library (libopenvino_c.so) was not found")
            && out.contains("/nonexistent/libopenvino_c.so (missing)")
            && out.contains("make setup")
            && out.contains("OVLVA_OPENVINO_LIB"),
        "{out}"
    );
}

#[test]
fn explicit_runtime_folder_is_used() {
    let libs = std::fs::read_dir(common::root().join(".venv/lib"))
        .expect(".venv from make setup")
        .flatten()
        .map(|e| e.path().join("site-packages/openvino/libs"))
        .find(|p| p.is_dir())
        .expect("the openvino wheel's libs folder");
    let out = run_child(libs.as_os_str());
    assert!(out.contains("FRAMES 1") && out.contains("ROIS 2"), "{out}");
    assert!(
        out.contains("ERRORS \n") || out.trim_end().ends_with("ERRORS"),
        "{out}"
    );
}

#[test]
fn explicit_folder_without_the_runtime_is_reported_not_skipped() {
    let empty = common::reference::scratch("no-openvino");
    let out = run_child(empty.as_os_str());
    assert!(out.contains("FRAMES 0"), "{out}");
    assert!(
        out.contains(&format!(
            "{} (missing)",
            empty.join("libopenvino_c.so").display()
        )),
        "{out}"
    );
}
