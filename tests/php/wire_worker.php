<?php
// The reference side of the wire codec's differential tests (tests/test_wire_php.py).
// One JSON request per line on stdin, one JSON answer per line on stdout:
//   {"op": "encode", "payload": {...}}            -> {"body": "<http_build_query result>"}
//     (JSON has no NAN or INF: {"__float__": "NAN" | "INF" | "-INF"} stands for them in a payload)
//   {"op": "decode", "body_b64": "..."}           -> {"json": "<json_encode of parse_str's result>",
//                                                     "utf8_ok": bool, "warnings": [...]}
// Run with -d display_errors=0: PHP reports a nesting-level overflow only when errors are not displayed.
declare(strict_types=1);

$warnings = [];
set_error_handler(function (int $errno, string $message) use (&$warnings): bool {
    $warnings[] = $message;
    return true;
});

function special_floats(mixed $value): mixed
{
    if (!is_array($value)) {
        return $value;
    }
    if (count($value) === 1 && isset($value['__float__'])) {
        return ['NAN' => NAN, 'INF' => INF, '-INF' => -INF][$value['__float__']];
    }
    return array_map('special_floats', $value);
}

$flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;
while (($line = fgets(STDIN)) !== false) {
    $warnings = [];
    $request = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
    if ($request['op'] === 'encode') {
        $answer = ['body' => http_build_query(special_floats($request['payload']))];
    } elseif ($request['op'] === 'decode') {
        $result = [];
        parse_str(base64_decode($request['body_b64'], true), $result);
        // the top level as an object, so that "0=a" shows as {"0": "a"} like the Python side's dict
        $strict = json_encode((object) $result, $flags);
        $answer = [
            'json' => $strict !== false ? $strict
                : json_encode((object) $result, $flags | JSON_INVALID_UTF8_SUBSTITUTE),
            'utf8_ok' => $strict !== false,
        ];
    } elseif ($request['op'] === 'info') {
        $answer = ['version' => PHP_VERSION, 'max_input_vars' => ini_get('max_input_vars'),
                   'max_input_nesting_level' => ini_get('max_input_nesting_level'),
                   'precision' => ini_get('precision')];
    } else {
        $answer = ['error' => 'unknown op'];
    }
    $answer['warnings'] = $warnings;
    fwrite(STDOUT, json_encode($answer, $flags | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    fflush(STDOUT);
}
