from __future__ import annotations


async def test_a_registration_commits_and_the_account_reads_back(chain):
    citizen = await chain.member("citizen")
    body = await chain.get(f"/v1/accounts/{citizen.public.hex()}", citizen)
    assert body["role"] == "citizen" and body["balance"] == 0
    status = await chain.get("/v1/status")
    assert status["height"] >= 1
