//! Compiled models, the inference requests created from them, and the requests' tensors: the
//! input a frame is copied into or borrowed as, the outputs read as f32.

use std::ffi::CStr;

use openvino_sys as sys;

use super::{Error, Guard, Result, check, cstring};

handle!(
    /// A model compiled for a device. Thread-safe; requests are created from it.
    pub CompiledModel(sys::ov_compiled_model_t), sys::ov_compiled_model_free
);

// SAFETY: ov::CompiledModel is documented thread-safe; the handle is owned.
unsafe impl Send for CompiledModel {}
// SAFETY: as above.
unsafe impl Sync for CompiledModel {}

impl CompiledModel {
    /// A new inference request's bare handle (for [`create_request`](Self::create_request) and
    /// the tensor requests of `tensor.rs`).
    pub(super) fn request_handle(&self) -> Result<RequestHandle> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid compiled model and out-parameter; the handle is owned by the result.
        check(
            unsafe { sys::ov_compiled_model_create_infer_request(self.0, &mut ptr) },
            "creating an inference request",
        )?;
        Ok(RequestHandle(ptr))
    }

    pub fn create_request(&self) -> Result<InferRequest> {
        let handle = self.request_handle()?;
        let mut t = std::ptr::null_mut();
        // SAFETY: valid request; the returned handle is a new reference, owned by `Tensor`.
        check(
            unsafe { sys::ov_infer_request_get_input_tensor(handle.0, &mut t) },
            "getting the input tensor",
        )?;
        Ok(InferRequest {
            handle,
            own_input: Tensor(t),
            borrowed: false,
        })
    }

    /// A property of the compiled model as text, e.g. "OPTIMAL_NUMBER_OF_INFER_REQUESTS".
    pub fn property(&self, key: &str) -> Result<String> {
        let key = cstring(key)?;
        let mut value = std::ptr::null_mut();
        // SAFETY: valid compiled model and key; on success `value` is a NUL-terminated string
        // allocated by OpenVINO, copied here and then released with ov_free.
        unsafe {
            check(
                sys::ov_compiled_model_get_property(self.0, key.as_ptr(), &mut value),
                "reading a compiled model property",
            )?;
            if value.is_null() {
                return Ok(String::new());
            }
            let text = CStr::from_ptr(value).to_string_lossy().into_owned();
            sys::ov_free(value);
            Ok(text)
        }
    }

    /// The number of requests that keeps the device busy, as OpenVINO computes it for the
    /// compiled model's hint (1 for latency on CPU, one per stream for throughput).
    pub fn optimal_requests(&self) -> Result<usize> {
        let text = self.property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")?;
        text.trim()
            .parse()
            .map_err(|_| Error(format!("OPTIMAL_NUMBER_OF_INFER_REQUESTS is '{text}'")))
    }
}

handle!(
    /// An inference request's handle.
    pub(super) RequestHandle(sys::ov_infer_request_t), sys::ov_infer_request_free
);

handle!(
    /// A reference to a tensor (its memory is OpenVINO's or, made from a host pointer, the
    /// caller's).
    Tensor(sys::ov_tensor_t), sys::ov_tensor_free
);

/// One inference request. Not shareable between threads at once.
pub struct InferRequest {
    handle: RequestHandle,
    /// The input tensor OpenVINO allocated with the request (the pre-processed input's shape).
    own_input: Tensor,
    /// Whether the input is currently a tensor over the caller's memory instead.
    borrowed: bool,
}

// SAFETY: a request and its tensor handles may move between threads; &mut self serialises use.
unsafe impl Send for InferRequest {}

impl InferRequest {
    /// The request's own input tensor, to copy a frame into.
    pub fn input_bytes(&mut self) -> Result<&mut [u8]> {
        if self.borrowed {
            // SAFETY: valid request and tensor; the request takes its own reference.
            check(
                unsafe { sys::ov_infer_request_set_input_tensor(self.handle.0, self.own_input.0) },
                "restoring the input tensor",
            )?;
            self.borrowed = false;
        }
        let size = self.input_size()?;
        let mut data = std::ptr::null_mut();
        // SAFETY: valid tensor; its memory lives as long as `own_input`, i.e. the request, and
        // the returned slice borrows the request mutably.
        unsafe {
            check(
                sys::ov_tensor_data(self.own_input.0, &mut data),
                "ov_tensor_data",
            )?;
            Ok(std::slice::from_raw_parts_mut(data.cast::<u8>(), size))
        }
    }

    /// Size in bytes of the input the request takes.
    pub fn input_size(&self) -> Result<usize> {
        let mut size = 0usize;
        // SAFETY: valid tensor and out-parameter.
        check(
            unsafe { sys::ov_tensor_get_byte_size(self.own_input.0, &mut size) },
            "ov_tensor_get_byte_size",
        )?;
        Ok(size)
    }

    /// Makes `data` the request's input without copying it: a tensor of the input's shape and
    /// type over that memory. It must be exactly [`InferRequest::input_size`] bytes.
    ///
    /// # Safety
    /// `data` must stay valid and unchanged until the next inference of this request has
    /// finished (returned from [`InferRequest::wait`], or [`InferRequest::is_done`] said so) or
    /// the request is freed; OpenVINO only reads it.
    pub unsafe fn borrow_input(&mut self, data: &[u8]) -> Result<()> {
        let size = self.input_size()?;
        if data.len() != size {
            return Err(Error(format!(
                "the frame has {} bytes, the input tensor takes {size}",
                data.len()
            )));
        }
        // SAFETY: valid tensor handles and out-parameters; the shape is freed after use; the new
        // tensor describes `data`, whose lifetime the caller guarantees (see above), and the
        // request keeps its own reference to it after our handle is freed.
        unsafe {
            let mut et = sys::ov_element_type_e::DYNAMIC;
            check(
                sys::ov_tensor_get_element_type(self.own_input.0, &mut et),
                "ov_tensor_get_element_type",
            )?;
            let mut shape = sys::ov_shape_t {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            check(
                sys::ov_tensor_get_shape(self.own_input.0, &mut shape),
                "ov_tensor_get_shape",
            )?;
            let mut t = std::ptr::null_mut();
            let status = sys::ov_tensor_create_from_host_ptr(
                et,
                shape,
                data.as_ptr().cast_mut().cast(),
                &mut t,
            );
            sys::ov_shape_free(&mut shape);
            check(status, "creating a tensor over the frame")?;
            let t = Tensor(t);
            check(
                sys::ov_infer_request_set_input_tensor(self.handle.0, t.0),
                "setting the input tensor",
            )?;
        }
        self.borrowed = true;
        Ok(())
    }

    pub fn infer(&mut self) -> Result<()> {
        // SAFETY: valid request.
        check(
            unsafe { sys::ov_infer_request_infer(self.handle.0) },
            "inference",
        )
    }

    /// Starts the inference in OpenVINO's threads and returns at once. The input must not be
    /// touched, nor the outputs read, before [`InferRequest::wait`] (`&mut self` ensures it for
    /// safe code; OpenVINO waits for a running request before freeing it).
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: valid request.
        check(
            unsafe { sys::ov_infer_request_start_async(self.handle.0) },
            "starting an inference",
        )
    }

    /// Waits until a started inference has finished; its error, if any, is returned here.
    pub fn wait(&mut self) -> Result<()> {
        // SAFETY: valid request.
        check(
            unsafe { sys::ov_infer_request_wait(self.handle.0) },
            "inference",
        )
    }

    /// Whether a started inference has finished (without blocking).
    pub fn is_done(&mut self) -> Result<bool> {
        // SAFETY: valid request; a zero timeout only polls.
        let status = unsafe { sys::ov_infer_request_wait_for(self.handle.0, 0) };
        if status == sys::ov_status_e::RESULT_NOT_READY {
            return Ok(false);
        }
        check(status, "inference").map(|_| true)
    }

    /// Output `index` as f32 values with its shape (outputs are converted to f32 by
    /// [`Model::with_preprocessing`](super::Model::with_preprocessing)).
    pub fn output_f32(&self, index: usize) -> Result<(Vec<usize>, &[f32])> {
        let mut t = std::ptr::null_mut();
        // SAFETY: valid request; the data stays valid while the request lives and is not run
        // again (the slice borrows the request).
        unsafe {
            check(
                sys::ov_infer_request_get_output_tensor_by_index(self.handle.0, index, &mut t),
                "getting an output tensor",
            )?;
            let t = Guard(t, sys::ov_tensor_free);
            let mut et = sys::ov_element_type_e::DYNAMIC;
            check(
                sys::ov_tensor_get_element_type(t.0, &mut et),
                "ov_tensor_get_element_type",
            )?;
            if et != sys::ov_element_type_e::F32 {
                return Err(Error(format!("output {index} is {et:?}, expected f32")));
            }
            let mut shape = sys::ov_shape_t {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            check(
                sys::ov_tensor_get_shape(t.0, &mut shape),
                "ov_tensor_get_shape",
            )?;
            let dims: Vec<usize> = std::slice::from_raw_parts(shape.dims, shape.rank as usize)
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect();
            sys::ov_shape_free(&mut shape);
            let mut size = 0usize;
            check(
                sys::ov_tensor_get_size(t.0, &mut size),
                "ov_tensor_get_size",
            )?;
            let mut data = std::ptr::null_mut();
            check(sys::ov_tensor_data(t.0, &mut data), "ov_tensor_data")?;
            Ok((dims, std::slice::from_raw_parts(data.cast::<f32>(), size)))
        }
    }
}
