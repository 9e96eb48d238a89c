//! Reading the results FIFO queue from the automation (`smoke-test`,
//! `load-test`): one receive, bodies parsed, and the delete of a message
//! read. (`facectl results` is the shipped, multi-threaded consumer.)

use anyhow::{Context, Result};
use serde_json::Value;

/// One message of the results queue.
#[derive(Debug)]
pub struct Delivery {
    /// The result message; `null` if the body is not JSON.
    pub body: Value,
    receipt_handle: Option<String>,
}

impl Delivery {
    /// The uploaded object's key the result is for ("" if none).
    pub fn key(&self) -> &str {
        self.body["key"].as_str().unwrap_or_default()
    }

    /// Deletes the message (done with it).
    pub async fn delete(&self, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<()> {
        if let Some(handle) = &self.receipt_handle {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .context("sqs:DeleteMessage (results)")?;
        }
        Ok(())
    }
}

/// Up to 10 messages, waiting at most a second for the first.
pub async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<Vec<Delivery>> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .context("sqs:ReceiveMessage (results)")?;
    Ok(received
        .messages()
        .iter()
        .map(|m| Delivery {
            body: serde_json::from_str(m.body().unwrap_or("null")).unwrap_or_default(),
            receipt_handle: m.receipt_handle().map(String::from),
        })
        .collect())
}
