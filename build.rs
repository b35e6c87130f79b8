fn main() {
    // Without a rerun-if-changed line cargo reruns this script, and rebuilds the plugin, whenever
    // any file in the checkout changes (a recipe's results.jsonl, annotated.mp4, ...).
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    gst_plugin_version_helper::info()
}
