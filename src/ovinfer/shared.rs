//! Process-wide sharing of compiled models: one OpenVINO core (`core`), the compiled models
//! (`COMPILED`) and the model instances named by `model-instance-id` (`INSTANCES`).
//!
//! Compiling a model takes from a tenth of a second to several seconds and holds the weights in
//! memory once per compilation. Elements that would compile the same model for the same input
//! (same file, device, hint and pre-processing) get one compiled model and each create their own
//! infer request from it, which is how OpenVINO is meant to be used from several threads. An entry
//! lives as long as one element holds it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, Weak};

use super::pool::Instance;
use crate::openvino::{self, CompiledModel, Core};

/// One OpenVINO core for the whole process (it is thread-safe and caches device plugins).
pub(crate) fn core() -> Result<&'static Core, openvino::Error> {
    static CORE: OnceLock<Result<Core, openvino::Error>> = OnceLock::new();
    CORE.get_or_init(Core::new).as_ref().map_err(Clone::clone)
}

/// Compiled models of the whole process, shared by elements that compile the same thing.
pub(crate) static COMPILED: LazyLock<Shared<CompiledModel>> = LazyLock::new(Shared::default);

/// Model instances named by `model-instance-id`.
pub(crate) static INSTANCES: LazyLock<Shared<Instance>> = LazyLock::new(Shared::default);

/// Values shared by key while at least one holder keeps them alive.
pub struct Shared<T> {
    map: Mutex<HashMap<String, Weak<T>>>,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Shared<T> {
    /// The live value for `key`, or a new one from `make`. The lock is held while `make` runs, so
    /// two elements starting together compile once; compiles are rare, so serialising them is
    /// cheaper than compiling twice.
    pub fn get_or_try_insert<E>(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<(Arc<T>, bool), E> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = map.get(key).and_then(Weak::upgrade) {
            return Ok((live, true));
        }
        map.retain(|_, v| v.strong_count() > 0);
        let value = Arc::new(make()?);
        map.insert(key.to_string(), Arc::downgrade(&value));
        Ok((value, false))
    }

    /// Number of live entries.
    pub fn live(&self) -> usize {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.values().filter(|v| v.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_shares_until_the_last_holder_drops() {
        let shared = Shared::<String>::default();
        let mut made = 0;
        let (a, reused_a) = shared
            .get_or_try_insert::<()>("m|CPU", || {
                made += 1;
                Ok("compiled".into())
            })
            .unwrap();
        let (b, reused_b) = shared
            .get_or_try_insert::<()>("m|CPU", || {
                made += 1;
                Ok("again".into())
            })
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((made, reused_a, reused_b), (1, false, true));
        let (c, _) = shared
            .get_or_try_insert::<()>("m|GPU", || Ok("other".into()))
            .unwrap();
        assert_eq!(*c, "other");
        assert_eq!(shared.live(), 2);
        drop((a, b));
        assert_eq!(shared.live(), 1);
        let (d, reused) = shared
            .get_or_try_insert::<()>("m|CPU", || Ok("recompiled".into()))
            .unwrap();
        assert_eq!((d.as_str(), reused), ("recompiled", false));
    }

    #[test]
    fn a_failed_make_leaves_nothing_behind() {
        let shared = Shared::<String>::default();
        assert_eq!(
            shared.get_or_try_insert("k", || Err::<String, _>("bad model")),
            Err("bad model")
        );
        assert_eq!(shared.live(), 0);
        let (v, reused) = shared
            .get_or_try_insert::<()>("k", || Ok("ok".into()))
            .unwrap();
        assert_eq!((v.as_str(), reused), ("ok", false));
    }
}
