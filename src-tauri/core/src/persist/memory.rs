//! An in-memory store for tests. Not for production persistence: nothing survives the process.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::{Backend, Persistence};
use crate::Result;

/// Bytes in memory.
#[derive(Debug, Default)]
pub struct Memory {
    bytes: Mutex<Option<Zeroizing<Vec<u8>>>>,
}

impl Persistence for Memory {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    fn location(&self) -> &Path {
        Path::new("(memory)")
    }

    fn load(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self.bytes.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn save(&self, bytes: &[u8]) -> Result<()> {
        *self.bytes.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Zeroizing::new(bytes.to_vec()));
        Ok(())
    }

    fn move_aside(&self, _why: &str) -> Result<Option<PathBuf>> {
        Ok(self
            .bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|_| PathBuf::from("(memory)")))
    }
}
