//! End-to-end tests: the real binary against the built-in simulator over loopback.
//! One test binary so that the exporter is built once and tests share a process.

mod aws_credentials;
mod calls;
mod core;
mod credentials;
mod data;
mod hardening;
mod harness;
mod hostile;
mod huawei_credentials;
mod landing;
mod reliability;
mod soak;
mod stack;
