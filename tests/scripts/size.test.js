// @ts-check
// bench/size.mjs's check that no code of `url` and what it brings is linked: it names the
// crates' functions, and not functions that merely have `url` in their path.
import { describe, expect, it } from "vitest";
import { isForbidden } from "../../bench/size.mjs";

describe("the size attribution's url/idna check", () => {
  it("finds the crates' functions, with or without a crate disambiguator", () => {
    for (const name of [
      "url::parser::Parser::parse_with_scheme::h0123456789abcdef",
      "url[3ca501edff3f0c7c]::Url::parse",
      "<url::Url as core::fmt::Debug>::fmt",
      "core::ptr::drop_in_place<url::Url>::h0123456789abcdef",
      "idna::uts46::Uts46::process::h0123456789abcdef",
      "<&percent_encoding::PercentEncode as core::fmt::Display>::fmt",
      "icu_normalizer::DecomposingNormalizer::new",
    ]) {
      expect(isForbidden(name), name).toBe(true);
    }
  });

  it("leaves alone a method named url and crates whose names end in url", () => {
    for (const name of [
      "web_sys::features::gen_Request::Request::url::h56791bb7662cf15e",
      "edgestate::pipeline::split_url::h0123456789abcdef",
      "myurl::parse",
      "worker::request::Request::url",
    ]) {
      expect(isForbidden(name), name).toBe(false);
    }
  });
});
