"""Type stubs for the part of flask-smorest this service uses (the package ships none).

Only the names imported by ``rems_service`` are declared; any other attribute is
``Any`` through the module ``__getattr__`` (a partial stub). The view decorators
return the view unchanged as far as callers are concerned: flask-smorest wraps it
to parse arguments and serialize the response, but only Flask calls the result.
"""

from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, ClassVar, NoReturn, TypeVar

import flask
from flask.typing import ResponseReturnValue
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

_View = TypeVar("_View", bound=Callable[..., Any])

def abort(http_status_code: int, exc: Exception | None = None, **kwargs: Any) -> NoReturn: ...

class Blueprint(flask.Blueprint):
    ARGUMENTS_PARSER: ClassVar[FlaskParser]
    def __init__(
        self,
        name: str,
        import_name: str,
        *args: Any,
        description: str | None = None,
        **kwargs: Any,
    ) -> None: ...
    def route(
        self,
        rule: str,
        *,
        parameters: Iterable[str | Mapping[str, Any]] | None = None,
        tags: Iterable[str] | None = None,
        **options: Any,
    ) -> Callable[[_View], _View]: ...
    def arguments(
        self,
        schema: Any,
        *,
        location: str = "json",
        content_type: str | None = None,
        required: bool = True,
        description: str | None = None,
        example: Any = None,
        examples: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Callable[[_View], _View]: ...
    def response(
        self,
        status_code: int | str | HTTPStatus,
        schema: Any = None,
        *,
        content_type: str | None = None,
        description: str | None = None,
        example: Any = None,
        examples: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Callable[[_View], _View]: ...
    def alt_response(
        self,
        status_code: int | str | HTTPStatus,
        response: str | None = None,
        *,
        schema: Any = None,
        content_type: str | None = None,
        description: str | None = None,
        example: Any = None,
        examples: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        success: bool = False,
    ) -> Callable[[_View], _View]: ...
    @staticmethod
    def doc(**kwargs: Any) -> Callable[[_View], _View]: ...

class Api:
    spec: Any
    def __init__(
        self, app: flask.Flask | None = None, *, spec_kwargs: Mapping[str, Any] | None = None, config_prefix: str = ""
    ) -> None: ...
    def init_app(self, app: flask.Flask, *, spec_kwargs: Mapping[str, Any] | None = None) -> None: ...
    def register_blueprint(
        self, blp: Blueprint, *, parameters: Iterable[str | Mapping[str, Any]] | None = None, **options: Any
    ) -> None: ...
    def handle_http_exception(self, error: HTTPException) -> ResponseReturnValue: ...

def __getattr__(name: str) -> Any: ...
