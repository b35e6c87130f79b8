use std::path::{Path, PathBuf};

/// Where `scripts/setup.sh` puts hls.js for the console (git-ignored; the folder itself is
/// tracked, so that cargo can watch it in every checkout).
const HLS_DIR: &str = "src/bin/lva-server/console/vendor";

fn main() {
    // Without a rerun-if-changed line cargo reruns this script, and rebuilds the plugin, whenever
    // any file in the checkout changes (a recipe's results.jsonl, annotated.mp4, ...).
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    hls_js();
    kserve_proto();
    gst_plugin_version_helper::info()
}

/// The KServe v2 gRPC messages and service (`proto/grpc_predict_v2.proto`) as Rust, in
/// `OUT_DIR/inference.rs`: server and client, for lva-server and the plugin library alike
/// (`tonic::include_proto!("inference")`). protoc is Debian's (`protobuf-compiler`, installed by
/// scripts/setup.sh), or the one `PROTOC` names.
fn kserve_proto() {
    const PROTO: &str = "proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    println!("cargo:rerun-if-env-changed=PROTOC");
    if let Err(e) = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&[PROTO], &["proto"])
    {
        panic!(
            "cannot compile {PROTO}: {e}\n(protoc comes with Debian's protobuf-compiler: run \
             scripts/setup.sh, or set PROTOC to a protoc binary)"
        );
    }
}

/// `OUT_DIR/hls.min.js`, embedded by lva-server's console: hls.js when setup installed it, else
/// a stand-in that makes the console say how to get it.
fn hls_js() {
    println!("cargo:rerun-if-changed={HLS_DIR}");
    let installed = Path::new(HLS_DIR).join("hls.min.js");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("hls.min.js");
    let written = if installed.is_file() {
        // Served as it is, with its licence (Apache-2.0) in front, as the licence asks.
        let read = |name: &str| std::fs::read_to_string(Path::new(HLS_DIR).join(name));
        let version = read("hls.js.version").unwrap_or_else(|_| "hls.js".into());
        let licence = read("LICENSE.hls.js")
            .unwrap_or_default()
            .replace("*/", "* /");
        std::fs::read(&installed).and_then(|js| {
            let mut all = format!("/*! {} */\n/*!\n{licence}*/\n", version.trim()).into_bytes();
            all.extend_from_slice(&js);
            std::fs::write(&out, all)
        })
    } else {
        println!(
            "cargo:warning=hls.js is not installed ({}): the console's live view will say \
             to run scripts/setup.sh",
            installed.display()
        );
        std::fs::write(
            &out,
            "// hls.js was not installed when lva-server was built: run scripts/setup.sh, then build again.\n\
             window.lvaHlsMissing = \"live view needs hls.js: run scripts/setup.sh\";\n",
        )
    };
    if let Err(e) = written {
        panic!("cannot write {}: {e}", out.display());
    }
}
