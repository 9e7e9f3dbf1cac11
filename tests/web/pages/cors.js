// An app on another origin reads the gateway's public API (?gateway=ORIGIN) and says
// what it got, or that the browser refused it.
const gateway = new URLSearchParams(location.search).get("gateway");
const result = document.getElementById("result");
try {
  const read = async (path) => (await fetch(`${gateway}${path}`, { cache: "no-store" })).json();
  const [status, proposals, stats] = await Promise.all(
    [read("/v1/status"), read("/v1/proposals"), read("/v1/stats")]);
  result.textContent = `read: chain ${status.chain}, height ${status.height}, `
    + `${proposals.items.length} proposals, ${stats.minted} minted`;
} catch (error) {
  result.textContent = `refused: ${error.name}`;
}
