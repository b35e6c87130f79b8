//! A ceiling on every single GStreamer memory allocation of the server process.
//!
//! The decoders (`jpegdec`, `avdec_bmp`) allocate their output frame from the size they read in
//! the image, and when negotiation fails they still allocate it ("fallback allocation", with the
//! default allocator). The probe on the decoder's output caps (`engine`) keeps oversized frames
//! away from the rest of the pipeline; this allocator makes sure the frame itself is never
//! allocated: it is installed as GStreamer's default allocator and refuses any allocation over
//! the ceiling, handing the others to GStreamer's system-memory allocator unchanged (the memory
//! it returns is the system allocator's own, so mapping and freeing are untouched).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::ObjectSubclassIsExt;

/// Allocations refused so far (shown in the log line of the refusal).
static REFUSED: AtomicU64 = AtomicU64::new(0);

mod imp {
    use super::*;
    use gst::subclass::prelude::*;

    #[derive(Default)]
    pub struct CappedAllocator {
        pub limit: OnceLock<usize>,
        pub system: OnceLock<gst::Allocator>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CappedAllocator {
        const NAME: &'static str = "LvaServerCappedAllocator";
        type Type = super::CappedAllocator;
        type ParentType = gst::Allocator;
    }

    impl ObjectImpl for CappedAllocator {}
    impl GstObjectImpl for CappedAllocator {}

    // SAFETY: `alloc` returns either null (GStreamer's "cannot allocate") or a memory made by
    // the system allocator, whole and owned by the caller; `free` only ever hands a memory to
    // the allocator recorded in it.
    unsafe impl AllocatorImpl for CappedAllocator {
        unsafe fn alloc(
            &self,
            size: usize,
            params: &gst::AllocationParams,
        ) -> *mut gst::ffi::GstMemory {
            let limit = self.limit.get().copied().unwrap_or(usize::MAX);
            let Some(system) = self.system.get() else {
                return std::ptr::null_mut();
            };
            let total = size
                .saturating_add(params.prefix())
                .saturating_add(params.padding());
            if total > limit {
                let n = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!(
                    "lva-server: refused a GStreamer allocation of {total} bytes, over the \
                     ceiling of {limit} bytes from max-pixels ({n} refused so far)"
                );
                return std::ptr::null_mut();
            }
            // SAFETY: `system` is a live allocator (kept in the OnceLock for the process's
            // life) and `params` a valid GstAllocationParams that GStreamer only reads.
            unsafe {
                gst::ffi::gst_allocator_alloc(
                    system.as_ptr(),
                    size,
                    params.as_ptr() as *mut gst::ffi::GstAllocationParams,
                )
            }
        }

        unsafe fn free(&self, memory: *mut gst::ffi::GstMemory) {
            // Never called: the memories handed out belong to the system allocator, which frees
            // them. Should one come here anyway, give it to its own allocator.
            // SAFETY: GStreamer passes a valid memory it no longer uses; its `allocator` field
            // names the allocator that made it, which is alive while the memory is.
            unsafe {
                let owner = (*memory).allocator;
                if !owner.is_null() && owner != self.obj().as_ptr() as *mut _ {
                    gst::ffi::gst_allocator_free(owner, memory);
                }
            }
        }
    }
}

glib::wrapper! {
    pub struct CappedAllocator(ObjectSubclass<imp::CappedAllocator>)
        @extends gst::Allocator, gst::Object;
}

/// The ceiling for a server whose pictures are at most `max_pixels` and raw bodies at most
/// `max_body` bytes: 8 bytes a pixel (the widest format a decoder or converter may pick), or the
/// body, plus 16 MiB.
pub fn ceiling(max_pixels: u64, max_body: u64) -> usize {
    let bytes = max_pixels
        .saturating_mul(8)
        .max(max_body)
        .saturating_add(16 << 20);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Makes the capped allocator GStreamer's default for this process.
pub fn install(limit: usize) -> Result<(), String> {
    let system = gst::Allocator::find(Some("SystemMemory"))
        .ok_or("GStreamer has no SystemMemory allocator")?;
    let capped = glib::Object::new::<CappedAllocator>();
    let _ = capped.imp().limit.set(limit);
    let _ = capped.imp().system.set(system);
    capped.upcast::<gst::Allocator>().set_default();
    Ok(())
}
