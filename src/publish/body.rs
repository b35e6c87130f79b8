//! The bytes of one document, shared without copying between the backlog and the worker.

use std::sync::Arc;

/// A document's bytes: a mapped GStreamer buffer (no copy) or bytes read back from the spool.
/// Cloning is cheap (reference counted).
#[derive(Clone)]
pub struct Body(Arc<dyn AsRef<[u8]> + Send + Sync>);

impl Body {
    /// The buffer's bytes, mapped for reading; the buffer back if it cannot be mapped.
    pub fn from_buffer(buffer: gst::Buffer) -> Result<Body, gst::Buffer> {
        let mapped = buffer.into_mapped_buffer_readable()?;
        Ok(Body(Arc::new(Mapped(mapped))))
    }

    pub fn from_vec(bytes: Vec<u8>) -> Body {
        Body(Arc::new(bytes))
    }
}

/// A readable mapped buffer as bytes.
struct Mapped(gst::MappedBuffer<gst::buffer::Readable>);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({} bytes)", self.as_ref().len())
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Body {
        Body::from_vec(text.as_bytes().to_vec())
    }
}
