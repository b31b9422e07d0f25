//! `weir:flow/concurrency`: slots of the workspace's concurrency and rate limits.

use super::HostState;
use super::weir::flow::concurrency::{self, Request};
use crate::model::run::LimitRequest;
use wasmtime::component::Resource;

/// Occupied slots, held in the instance's table; dropping it (or the instance) gives
/// them back.
pub struct OccupancyHandle {
    guard: Option<Box<dyn Send + Sync>>,
}

fn request_from_wit(r: Request) -> LimitRequest {
    LimitRequest {
        names: r.names,
        occupy: r.occupy,
        timeout_seconds: r.timeout_seconds,
        strict: r.strict,
    }
}

impl concurrency::Host for HostState {
    async fn acquire(
        &mut self,
        request: Request,
    ) -> wasmtime::Result<Result<Resource<OccupancyHandle>, String>> {
        self.charge()?;
        let run = self.run("concurrency.acquire")?.clone();
        let guard = match run
            .occupy(self.task.clone(), request_from_wit(request))
            .await
        {
            Ok(guard) => guard,
            Err(e) => return Ok(Err(e)),
        };
        // A full table drops the guard, which gives the slots back.
        Ok(Ok(self
            .futures
            .push(OccupancyHandle { guard: Some(guard) })?))
    }

    async fn rate_limit(&mut self, request: Request) -> wasmtime::Result<Result<(), String>> {
        self.charge()?;
        let run = self.run("concurrency.rate-limit")?.clone();
        Ok(run
            .rate_limit(self.task.clone(), request_from_wit(request))
            .await)
    }
}

impl concurrency::HostOccupancy for HostState {
    async fn release(&mut self, this: Resource<OccupancyHandle>) -> wasmtime::Result<()> {
        self.charge()?;
        self.futures.get_mut(&this)?.guard = None;
        Ok(())
    }

    async fn drop(&mut self, this: Resource<OccupancyHandle>) -> wasmtime::Result<()> {
        self.futures.delete(this)?;
        Ok(())
    }
}
