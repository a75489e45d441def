"""GraphQL execution for stellate: request checking, a depth limit, and anyio concurrency.

graphql-core awaits sibling resolvers with ``asyncio.gather``, which only works on an
asyncio loop. :class:`AnyioExecutionContext` replaces the two places that gather
(sibling fields and list items) with an anyio task group, so async resolvers run the same
on trio, and a failing sibling cancels its siblings instead of leaving them running.
:func:`anyio_type_resolver` does the same for async ``is_type_of`` checks of interfaces and
unions, which graphql-core's default type resolver also gathers with asyncio.

:func:`prepare` turns the raw parameters of a request (HTTP or WebSocket) into a checked
:class:`PreparedOperation`, or raises :class:`GraphQLRequestError` carrying the errors to
report before anything is executed: such errors are the client's, and get a 400.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import anyio
from graphql import (
    ExecutionContext,
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    create_source_event_stream,
    execute,
    get_operation_ast,
    get_variable_values,
    located_error,
    parse,
    specified_rules,
    validate,
)
from graphql.pyutils import Path, Undefined, is_iterable
from graphql.validation import ValidationContext

__all__ = [
    "AnyioExecutionContext",
    "GraphQLRequestError",
    "PreparedOperation",
    "depth_limit_rule",
    "execute_prepared",
    "prepare",
    "subscribe_prepared",
]

# graphql-core 3.2.x changed handle_field_error to also take the path of the field.
_HANDLER_TAKES_PATH = "path" in inspect.signature(ExecutionContext.handle_field_error).parameters


class GraphQLRequestError(Exception):
    """A request that cannot be executed: the errors to send back, with no ``data``."""

    def __init__(
        self,
        errors: list[GraphQLError] | str,
        status_code: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.errors = [GraphQLError(errors)] if isinstance(errors, str) else errors
        self.status_code = status_code
        self.headers = dict(headers or {})
        super().__init__("; ".join(error.message for error in self.errors))


@dataclass(frozen=True)
class PreparedOperation:
    """A parsed, validated document and the one operation of it that will run."""

    document: Any
    operation: OperationDefinitionNode
    operation_name: str | None
    variables: dict[str, Any] | None

    @property
    def kind(self) -> OperationType:
        return self.operation.operation


def prepare(
    schema: GraphQLSchema,
    query: Any,
    variables: Any,
    operation_name: Any,
    max_depth: int | None,
) -> PreparedOperation:
    """Parse and validate ``query``, pick the operation and check the variables.

    Every way a request can be wrong (missing query, wrong parameter types, syntax errors,
    invalid or too deep documents, unknown operation, bad variables) raises
    :class:`GraphQLRequestError` before any resolver runs.
    """
    if not isinstance(query, str) or not query.strip():
        raise GraphQLRequestError("No GraphQL query found in the request.")
    if variables is not None and not isinstance(variables, dict):
        raise GraphQLRequestError("The 'variables' parameter must be a JSON object.")
    if operation_name is not None and not isinstance(operation_name, str):
        raise GraphQLRequestError("The 'operationName' parameter must be a string.")
    try:
        document = parse(query)
    except GraphQLError as error:
        raise GraphQLRequestError([error]) from None
    rules = list(specified_rules)
    if max_depth is not None:
        rules.append(depth_limit_rule(max_depth))
    errors = validate(schema, document, rules)
    if errors:
        raise GraphQLRequestError(errors)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise GraphQLRequestError(_no_operation_message(operation_name))
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        raise GraphQLRequestError(coerced)
    return PreparedOperation(document, operation, operation_name, variables)


def _no_operation_message(operation_name: str | None) -> str:
    # Validation already refused documents without operations or with several anonymous
    # ones, so only these two cases remain.
    if operation_name:
        return f"Unknown operation named '{operation_name}'."
    return "The document has several operations: say which to run with 'operationName'."


async def execute_prepared(
    schema: GraphQLSchema,
    prepared: PreparedOperation,
    root_value: Any,
    context_value: Any,
) -> ExecutionResult:
    """Execute a query or mutation, awaiting async resolvers through anyio."""
    result = execute(
        schema,
        prepared.document,
        root_value=root_value,
        context_value=context_value,
        variable_values=prepared.variables,
        operation_name=prepared.operation_name,
        type_resolver=anyio_type_resolver,
        execution_context_class=AnyioExecutionContext,
    )
    if isinstance(result, ExecutionResult):
        return result
    return await result


async def subscribe_prepared(
    schema: GraphQLSchema,
    prepared: PreparedOperation,
    root_value: Any,
    context_value: Any,
) -> AsyncIterable[Any] | ExecutionResult:
    """The source event stream of a subscription, or the errors that prevented it."""
    return await create_source_event_stream(
        schema,
        prepared.document,
        root_value=root_value,
        context_value=context_value,
        variable_values=prepared.variables,
        operation_name=prepared.operation_name,
    )


# -- the depth limit -----------------------------------------------------------------------


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    """A validation rule refusing operations whose fields nest deeper than ``max_depth``.

    ``{ a }`` has depth 1, ``{ a { b } }`` depth 2; fragments count where they are used.
    Deep documents are the cheapest way to make a server do a lot of work, so they are
    refused before execution, with an error naming the operation.
    """

    class DepthLimitRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            if _exceeds_depth(self.context, node.selection_set, max_depth):
                name = f"Operation '{node.name.value}'" if node.name else "The operation"
                self.report_error(
                    GraphQLError(
                        f"{name} is nested too deeply: the maximum depth is {max_depth}.",
                        node,
                    )
                )

    return DepthLimitRule


def _exceeds_depth(context: ValidationContext, root: SelectionSetNode, limit: int) -> bool:
    """Walk the selections without recursion, visiting each fragment once per depth.

    An explicit stack keeps long fragment chains from hitting Python's recursion limit,
    and the (fragment, depth) memo keeps fragments spread many times (or in cycles, which
    another rule reports) from making the walk exponential or endless.
    """
    seen: set[tuple[str, int]] = set()
    stack: list[tuple[SelectionSetNode, int]] = [(root, 0)]
    while stack:
        selection_set, depth = stack.pop()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if depth + 1 > limit:
                    return True
                if selection.selection_set is not None:
                    stack.append((selection.selection_set, depth + 1))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, depth))
            else:
                selection = cast(FragmentSpreadNode, selection)
                key = (selection.name.value, depth)
                fragment = context.get_fragment(key[0])
                if fragment is not None and key not in seen:
                    seen.add(key)
                    stack.append((fragment.selection_set, depth))
    return False


# -- anyio execution ------------------------------------------------------------------------


class AnyioExecutionContext(ExecutionContext):
    """graphql-core's execution with siblings awaited in an anyio task group."""

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        fields: dict[str, list[FieldNode]],
    ) -> Any:
        results: dict[str, Any] = {}
        pending: list[str] = []
        for response_name, field_nodes in fields.items():
            field_path = Path(path, response_name, parent_type.name)
            result = self.execute_field(parent_type, source_value, field_nodes, field_path)
            if result is Undefined:  # pragma: no cover - unknown fields fail validation
                continue
            results[response_name] = result
            if self.is_awaitable(result):
                pending.append(response_name)
        if not pending:
            return results
        return _settle(results, pending)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_nodes: list[FieldNode],
        info: GraphQLResolveInfo,
        path: Path,
        result: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        if not is_iterable(result):
            if isinstance(result, AsyncIterable):
                return self._complete_async_iterable(return_type, field_nodes, info, path, result)
            raise GraphQLError(
                "Expected Iterable, but did not find one for field"
                f" '{info.parent_type.name}.{info.field_name}'."
            )
        item_type = return_type.of_type
        completed: list[Any] = []
        pending: list[int] = []
        for index, item in enumerate(cast(Iterable[Any], result)):
            item_path = path.add_key(index, None)
            value = self._complete_item(item_type, field_nodes, info, item_path, item)
            if self.is_awaitable(value):
                pending.append(index)
            completed.append(value)
        if not pending:
            return completed
        return _settle(completed, pending)

    async def _complete_async_iterable(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_nodes: list[FieldNode],
        info: GraphQLResolveInfo,
        path: Path,
        result: AsyncIterable[Any],
    ) -> Any:
        items = [item async for item in result]
        completed = self.complete_list_value(return_type, field_nodes, info, path, items)
        return await completed if self.is_awaitable(completed) else completed

    def _complete_item(
        self,
        item_type: GraphQLOutputType,
        field_nodes: list[FieldNode],
        info: GraphQLResolveInfo,
        item_path: Path,
        item: Any,
    ) -> Any:
        """Complete one list item; errors null the item (or propagate if non-null)."""
        try:
            if self.is_awaitable(item):
                return self._complete_later(item_type, field_nodes, info, item_path, item, True)
            value = self.complete_value(item_type, field_nodes, info, item_path, item)
            if self.is_awaitable(value):
                return self._complete_later(item_type, field_nodes, info, item_path, value, False)
            return value
        except Exception as raw_error:
            return self._item_error(raw_error, item_type, field_nodes, item_path)

    async def _complete_later(
        self,
        item_type: GraphQLOutputType,
        field_nodes: list[FieldNode],
        info: GraphQLResolveInfo,
        item_path: Path,
        awaitable: Awaitable[Any],
        still_to_complete: bool,
    ) -> Any:
        try:
            value = await awaitable
            if still_to_complete:
                value = self.complete_value(item_type, field_nodes, info, item_path, value)
                if self.is_awaitable(value):
                    value = await value
            return value
        except Exception as raw_error:
            return self._item_error(raw_error, item_type, field_nodes, item_path)

    def _item_error(
        self,
        raw_error: Exception,
        item_type: GraphQLOutputType,
        field_nodes: list[FieldNode],
        item_path: Path,
    ) -> None:
        error = located_error(raw_error, field_nodes, item_path.as_list())
        if _HANDLER_TAKES_PATH:
            self.handle_field_error(error, item_type, item_path)
        else:  # pragma: no cover - older graphql-core 3.2 releases
            self.handle_field_error(error, item_type)  # type: ignore[call-arg]
        return None


def anyio_type_resolver(
    value: Any, info: GraphQLResolveInfo, abstract_type: GraphQLAbstractType
) -> Any:
    """Resolve the concrete type of an interface or union value without asyncio.

    Used for abstract types without ``resolve_type``: a ``__typename`` key or attribute
    wins; otherwise the first possible type whose ``is_type_of`` is true. graphql-core
    gathers async ``is_type_of`` checks with ``asyncio.gather``; here they are awaited in
    order (every one of them, so none is left un-awaited).
    """
    typename = (
        value.get("__typename") if isinstance(value, dict) else getattr(value, "__typename", None)
    )
    if isinstance(typename, str):
        return typename
    checks: list[tuple[str, Any]] = []
    for type_ in info.schema.get_possible_types(abstract_type):
        if type_.is_type_of is None:
            continue
        result = type_.is_type_of(value, info)
        if not checks and not info.is_awaitable(result):
            if result:
                return type_.name
            continue
        checks.append((type_.name, result))
    if not checks:
        return None
    return _first_true(checks, info)


async def _first_true(checks: list[tuple[str, Any]], info: GraphQLResolveInfo) -> str | None:
    found: str | None = None
    for name, result in checks:
        matched = (await result) if info.is_awaitable(result) else result
        if matched and found is None:
            found = name
    return found


async def _settle(container: Any, keys: list[Any]) -> Any:
    """Replace ``container[key]`` by its awaited value, for all keys concurrently.

    The first error cancels the remaining siblings and is raised as itself (graphql-core
    then nulls the parent, as the GraphQL specification asks), never as a group.
    """
    failures: list[Exception] = []

    async def settle_one(key: Any, scope: anyio.CancelScope) -> None:
        try:
            container[key] = await container[key]
        except Exception as error:  # cancellation is a BaseException and passes through
            failures.append(error)
            scope.cancel()

    async with anyio.create_task_group() as task_group:
        for key in keys:
            task_group.start_soon(settle_one, key, task_group.cancel_scope)
    if failures:
        raise failures[0]
    return container
