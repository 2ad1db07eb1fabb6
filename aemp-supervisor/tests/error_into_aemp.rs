//! A supervisor's errors convert into `aemp::Error`, so that `?` works in
//! functions that return `aemp::Result`.

use aemp::{Node, Reason};
use aemp_supervisor::{ChildSpec, Error, Strategy, Supervisor, SupervisorSpec};

/// Starts a supervisor with a child whose init function fails: the start
/// fails, and `?` hands that error on as an `aemp::Error`.
async fn start_failing(node: &Node) -> aemp::Result<Supervisor> {
    node.register("ErrorIntoAemp::fails", |_ctx, _args| Err::<(), _>(aemp::Error::die("no luck")));
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("w", "ErrorIntoAemp::fails"));
    let sup = Supervisor::start(node, spec).await?;
    Ok(sup)
}

#[tokio::test]
async fn a_supervisor_error_passes_through_question_mark_in_an_aemp_result() {
    let node = Node::builder().build().await.unwrap();
    let e = start_failing(&node).await.expect_err("the child cannot start");
    let inner = e.other_ref::<Error>().expect("the supervisor's error, kept whole");
    match inner {
        Error::StartFailed { id, reason } => {
            assert_eq!(id, "w");
            assert_eq!(*reason, Reason::die("no luck"));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(e.to_string(), inner.to_string(), "the text is the supervisor's");
    node.shutdown().await;
}

#[test]
fn a_node_error_inside_a_supervisor_error_comes_back_as_itself() {
    let e: aemp::Error = Error::Aemp(aemp::Error::Shutdown).into();
    assert!(matches!(e, aemp::Error::Shutdown), "{e:?}");
}
