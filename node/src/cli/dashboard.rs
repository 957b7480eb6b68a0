//! `colonymesh dashboard`: the address of the node's web dashboard, with its key in the
//! fragment (browsers never send the fragment to the server; the page reads it and sends the
//! key with every data request). Needs the server owner key.

use super::env::ClientEnv;
use super::output::Output;
use proto::mesh::DashboardReply;
use proto::msgs::EmptyMsg;
use proto::Request;

pub(crate) async fn run(env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let key = env.server_prvkey()?;
    let reply: DashboardReply = env
        .client()?
        .call(&Request::GetDashboard(EmptyMsg {}), &key)
        .await?;
    let url = format!("{}{}#key={}", env.base_url()?, reply.path, reply.key);
    if out.json {
        let value = serde_json::json!({ "url": url, "servedby": reply.servedby });
        out.show(&value, &[], Vec::new());
    } else {
        super::output::print(&format!("{url}\n"));
    }
    Ok(())
}
