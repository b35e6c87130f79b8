//! Embedding ovlva in an application: runs `ovinfer` and `lvajson` over a video file and hands
//! each frame's LVA inference document to the application (here: printed, one per line).
//!
//! usage: cargo run --release --example lva_app -- VIDEO MODEL [LABELS]
//!
//! The plugin is registered from this binary, so no GST_PLUGIN_PATH is needed.

use std::io::Write;

use gst::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [video, model, rest @ ..] = args.as_slice() else {
        eprintln!("usage: lva_app VIDEO MODEL [LABELS]");
        std::process::exit(2);
    };
    gst::init()?;
    gstovlva::plugin_register_static()?;

    let labels = rest
        .first()
        .map(|l| format!("labels={l}"))
        .unwrap_or_default();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={video} ! decodebin ! videoconvert ! ovinfer model={model} {labels} \
         ! lvajson extensions=pts+frame-number ! appsink name=sink sync=false"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let sink = pipeline
        .by_name("sink")
        .ok_or("no sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "not an appsink")?;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(|s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let document = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                // The application's own use of the document goes here.
                let mut out = std::io::stdout().lock();
                // A closed stdout (e.g. piped to head) ends the pipeline.
                out.write_all(&document)
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(|_| gst::FlowError::Eos)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );

    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!(
                    "{}: {}",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    result.map_err(Into::into)
}
