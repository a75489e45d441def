// The GraphQL console: POST the query as JSON to /graphql and show the answer.
"use strict";
(() => {
  const query = document.getElementById("gql-query");
  const result = document.getElementById("gql-result");
  document.getElementById("gql-run").addEventListener("click", async () => {
    result.textContent = "…";
    try {
      const response = await fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ query: query.value }),
      });
      const body = await response.json();
      result.textContent = `${response.status}\n${JSON.stringify(body, null, 2)}`;
    } catch (error) {
      result.textContent = `request failed: ${error}`;
    }
  });
})();
