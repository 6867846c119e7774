//! The one way the CLI waits for something to happen on the platform: poll until ready, say
//! every so often what is still awaited, give up at a deadline. Polls sleep with tokio, so a
//! wait never blocks the runtime.

use std::time::{Duration, Instant};

/// One poll's answer.
#[derive(Debug)]
pub enum Poll<T> {
    Ready(T),
    /// Not yet: what is still awaited, for the progress lines.
    Pending(String),
}

/// How a wait ended.
#[derive(Debug)]
pub enum Waited<T> {
    Ready(T),
    /// The deadline passed (the caller knows best what to say about what it still awaits).
    TimedOut,
}

/// Polls `poll` until it is ready or `timeout` has passed, printing `still waiting for ...`
/// to stderr every `every`. A poll that finds nothing new should sleep a little
/// ([`pause`]) before it returns.
pub async fn until<T, E>(
    timeout: Duration,
    every: Duration,
    mut poll: impl AsyncFnMut() -> Result<Poll<T>, E>,
) -> Result<Waited<T>, E> {
    let started = Instant::now();
    let mut next_progress = every;
    loop {
        let awaited = match poll().await? {
            Poll::Ready(value) => return Ok(Waited::Ready(value)),
            Poll::Pending(awaited) => awaited,
        };
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Ok(Waited::TimedOut);
        }
        if elapsed >= next_progress {
            eprintln!(
                "still waiting for {awaited} ({} s of {} s)",
                elapsed.as_secs(),
                timeout.as_secs()
            );
            next_progress += every;
        }
    }
}

/// A pause between polls that does not block the runtime.
pub async fn pause(duration: Duration) {
    tokio::time::sleep(duration).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_ends_when_ready_or_at_its_deadline_with_what_was_awaited() {
        let mut polls = 0;
        let ready = until(Duration::from_secs(5), Duration::from_secs(1), async || {
            polls += 1;
            Ok::<_, ()>(if polls == 3 {
                Poll::Ready(polls)
            } else {
                Poll::Pending("three polls".into())
            })
        })
        .await;
        assert!(matches!(ready, Ok(Waited::Ready(3))));

        let timed_out = until(
            Duration::from_millis(50),
            Duration::from_secs(1),
            async || {
                pause(Duration::from_millis(10)).await;
                Ok::<Poll<()>, ()>(Poll::Pending("nothing".into()))
            },
        )
        .await;
        assert!(matches!(timed_out, Ok(Waited::TimedOut)));

        let failed = until(Duration::from_secs(5), Duration::from_secs(1), async || {
            Err::<Poll<()>, _>("broken")
        })
        .await;
        assert!(matches!(failed, Err("broken")));
    }
}
