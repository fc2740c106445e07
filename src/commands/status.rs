//! `status`: the health gate.

use super::{Ctx, Outcome};
use crate::error::{Error, Result};

pub fn run(_ctx: &Ctx<'_>) -> Result<Outcome> {
    Err(Error::failed("status: under construction"))
}
