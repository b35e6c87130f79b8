//! A small safe layer over the OpenVINO C API (`openvino-sys`, loaded at run time).
//!
//! Only what the elements need: read a model, describe its ports, add pre/post-processing
//! (colour conversion, resize, layout, element type, mean/scale), compile, and run inference
//! requests. The library itself is found by [`ensure_loaded`].
//!
//! By concept, each in its own file, all re-exported here:
//! - `library`: finding and loading the shared library, and its version;
//! - `core`: the runtime core, models read from files and their ports;
//! - `preprocess`: the pre/post-processing built into a model for the frames it takes;
//! - `request`: compiled models, inference requests and their tensors;
//! - `tensor`: element types of any kind and requests fed whole tensors as bytes (a model served
//!   as it is).
//!
//! This file holds what they share: the error type, status checks, C strings, and the owning
//! wrappers of OpenVINO handles.

use std::ffi::{CStr, CString, c_char};

use openvino_sys as sys;

/// Declares an owning wrapper of an OpenVINO handle, freed exactly once on drop. (Declared before
/// the submodules, which use it; the pointer is visible to all of them.)
macro_rules! handle {
    ($(#[$doc:meta])* $vis:vis $name:ident($ty:ty), $free:path) => {
        $(#[$doc])*
        $vis struct $name(pub(in crate::openvino) *mut $ty);

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: the pointer was returned by the OpenVINO call that created this
                // handle, is owned by this wrapper alone and is freed only here.
                unsafe { $free(self.0) }
            }
        }
    };
}

mod core;
mod library;
mod preprocess;
mod request;
mod tensor;

pub use self::core::{Core, ElementType, Model, PortInfo};
pub use library::{LIBRARY_ENV, ensure_loaded, version};
pub use preprocess::{InputPreprocessing, PixelFormat};
pub use request::{CompiledModel, InferRequest};
pub use tensor::{DataType, TensorRequest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Turns a status code into an error carrying OpenVINO's own last message.
fn check(status: sys::ov_status_e, what: &str) -> Result<()> {
    if status == sys::ov_status_e::OK {
        return Ok(());
    }
    // SAFETY: both functions return pointers to static or thread-local NUL-terminated strings
    // owned by the library (never freed by the caller); null is handled.
    let detail = unsafe {
        let last = sys::ov_get_last_err_msg();
        if last.is_null() || *last == 0 {
            let info = sys::ov_get_error_info(status);
            if info.is_null() {
                String::new()
            } else {
                CStr::from_ptr(info).to_string_lossy().into_owned()
            }
        } else {
            CStr::from_ptr(last).to_string_lossy().into_owned()
        }
    };
    Err(Error(format!(
        "{what} failed ({status:?}): {}",
        detail.trim()
    )))
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error(format!("string contains a NUL byte: {s:?}")))
}

/// Takes ownership of a string allocated by OpenVINO.
///
/// # Safety
/// `ptr` must be null or a string returned by OpenVINO that the caller must free with `ov_free`.
unsafe fn owned_string(ptr: *mut c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller: a valid NUL-terminated string we now own.
    unsafe {
        let s = CStr::from_ptr(ptr).to_string_lossy().into_owned();
        sys::ov_free(ptr);
        s
    }
}

/// Frees an OpenVINO handle when it goes out of scope.
struct Guard<T>(*mut T, unsafe fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the OpenVINO call paired with this free function.
            unsafe { (self.1)(self.0) }
        }
    }
}
