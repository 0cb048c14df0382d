/*
 * lessoncast: libsrtp 3.x API on top of Debian's libsrtp2 (2.5.x).
 *
 * mediasoup's worker includes <srtp.h> and calls the libsrtp 3.x API. Debian
 * only ships libsrtp2, whose header lives at <srtp2/srtp.h>. This header is
 * put first on the include path by the local "libsrtp3" meson subproject
 * (scripts/worker/subprojects/libsrtp3) and adds the few 3.x entry points
 * mediasoup uses as C++ overloads next to the 2.x C functions:
 *
 *   3.x                                                     2.x
 *   srtp_protect(ctx, in, in_len, out, &out_len, mki)       srtp_protect(ctx, buf, &int_len)
 *   srtp_protect_rtcp(ctx, in, in_len, out, &out_len, mki)  srtp_protect_rtcp(ctx, buf, &int_len)
 *   srtp_unprotect(ctx, in, in_len, out, &out_len)          srtp_unprotect(ctx, buf, &int_len)
 *   srtp_unprotect_rtcp(ctx, in, in_len, out, &out_len)     srtp_unprotect_rtcp(ctx, buf, &int_len)
 *   srtp_stream_remove(ctx, ssrc)                           srtp_remove_stream(ctx, ssrc)
 *   srtp_err_status_buffer_small (28)                       (absent)
 *   srtp_err_status_cryptex_err (29)                        (absent)
 *
 * 3.x takes separate in/out buffers, size_t lengths, and *out_len as the
 * room available in `out` on input. 2.x works in place on an int length and
 * assumes room for the trailer after the packet. The wrappers copy in -> out,
 * check the room against the trailer the session will really add, run the
 * 2.x function in place on `out` and write the resulting length back.
 *
 * MKI: mediasoup never configures master key identifiers (policy.keys is
 * NULL), so mki_index is ignored, as libsrtp 3.x does for sessions without
 * MKI.
 */

#ifndef LESSONCAST_SRTP3_ON_SRTP2_H
#define LESSONCAST_SRTP3_ON_SRTP2_H

#ifndef __cplusplus
#error "lessoncast srtp.h adapter: only C++ translation units are supported"
#endif

#include <srtp2/srtp.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(SRTP_VERSION_MAJOR) && SRTP_VERSION_MAJOR >= 3
#error "lessoncast srtp.h adapter is for libsrtp 2.x only"
#endif

/* Error codes added in libsrtp 3.x (the enum of 2.x ends at 27). */
static constexpr srtp_err_status_t srtp_err_status_buffer_small =
  static_cast<srtp_err_status_t>(28);
static constexpr srtp_err_status_t srtp_err_status_cryptex_err =
  static_cast<srtp_err_status_t>(29);

namespace lessoncast_srtp3
{
	/* Upper bound of what 2.x may append: tag + MKI, plus the 4-byte SRTCP
	 * index word for RTCP. If the caller offers at least this much room, the
	 * per-packet trailer query (which walks the session's streams) is
	 * skipped. */
	static constexpr size_t MaxGrowth = SRTP_MAX_TRAILER_LEN + 4u;

	using TrailerFn = srtp_err_status_t (*)(srtp_t, uint32_t, uint32_t, uint32_t*);
	using InPlaceFn = srtp_err_status_t (*)(srtp_t, void*, int*);

	inline srtp_err_status_t Protect(
	  TrailerFn trailerFn,
	  InPlaceFn protectFn,
	  srtp_t ctx,
	  const uint8_t* in,
	  size_t inLen,
	  uint8_t* out,
	  size_t* outLen)
	{
		if (!ctx || !in || !out || !outLen)
			return srtp_err_status_bad_param;

		if (inLen > static_cast<size_t>(INT_MAX) - MaxGrowth)
			return srtp_err_status_bad_param;

		if (*outLen < inLen + MaxGrowth)
		{
			/* Tight buffer: check against what this session really appends.
			 * (libsrtp 2.5's RTCP figure already includes the 4-byte SRTCP
			 * index word: measured 14 for AES_CM_128_HMAC_SHA1_80, 20 for
			 * AEAD_AES_*_GCM, equal to the real growth of a protected packet.) */
			uint32_t trailer{ 0 };
			const srtp_err_status_t st = trailerFn(ctx, 0u, 0u, &trailer);

			if (st != srtp_err_status_ok)
				return st;

			if (*outLen < inLen + trailer)
				return srtp_err_status_buffer_small;
		}

		if (out != in)
			std::memmove(out, in, inLen);

		int len = static_cast<int>(inLen);
		const srtp_err_status_t st = protectFn(ctx, out, &len);

		if (st != srtp_err_status_ok)
			return st;

		*outLen = static_cast<size_t>(len);

		return srtp_err_status_ok;
	}

	inline srtp_err_status_t Unprotect(
	  InPlaceFn unprotectFn, srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen)
	{
		if (!ctx || !in || !out || !outLen)
			return srtp_err_status_bad_param;

		if (inLen > static_cast<size_t>(INT_MAX))
			return srtp_err_status_bad_param;

		/* 2.x decrypts in place in `out`, so the whole input must fit there
		 * (the result is never longer than the input). */
		if (*outLen < inLen)
			return srtp_err_status_buffer_small;

		if (out != in)
			std::memmove(out, in, inLen);

		int len = static_cast<int>(inLen);
		const srtp_err_status_t st = unprotectFn(ctx, out, &len);

		if (st != srtp_err_status_ok)
			return st;

		*outLen = static_cast<size_t>(len);

		return srtp_err_status_ok;
	}
} // namespace lessoncast_srtp3

/* C++ overloads with the libsrtp 3.x signatures. The 2.x C functions of the
 * same names (3 arguments) stay visible and are what these call. */

inline srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* rtp, size_t rtp_len, uint8_t* srtp, size_t* srtp_len, size_t /*mki_index*/)
{
	return lessoncast_srtp3::Protect(
	  &::srtp_get_protect_trailer_length,
	  static_cast<lessoncast_srtp3::InPlaceFn>(&::srtp_protect),
	  ctx,
	  rtp,
	  rtp_len,
	  srtp,
	  srtp_len);
}

inline srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* rtcp, size_t rtcp_len, uint8_t* srtcp, size_t* srtcp_len, size_t /*mki_index*/)
{
	return lessoncast_srtp3::Protect(
	  &::srtp_get_protect_rtcp_trailer_length,
	  static_cast<lessoncast_srtp3::InPlaceFn>(&::srtp_protect_rtcp),
	  ctx,
	  rtcp,
	  rtcp_len,
	  srtcp,
	  srtcp_len);
}

inline srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* srtp, size_t srtp_len, uint8_t* rtp, size_t* rtp_len)
{
	return lessoncast_srtp3::Unprotect(
	  static_cast<lessoncast_srtp3::InPlaceFn>(&::srtp_unprotect), ctx, srtp, srtp_len, rtp, rtp_len);
}

inline srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* srtcp, size_t srtcp_len, uint8_t* rtcp, size_t* rtcp_len)
{
	return lessoncast_srtp3::Unprotect(
	  static_cast<lessoncast_srtp3::InPlaceFn>(&::srtp_unprotect_rtcp),
	  ctx,
	  srtcp,
	  srtcp_len,
	  rtcp,
	  rtcp_len);
}

/* 3.x renamed srtp_remove_stream(); ssrc in network byte order in both. */
inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}


#ifdef LESSONCAST_SRTP3_POLICY_API
/*
 * The opaque policy object of libsrtp 3.x (mediasoup >= 3.32 builds its
 * sessions through it), kept as a 2.x srtp_policy_t plus the key||salt buffer
 * 2.x wants in one piece. Enabled by the shim's meson.build when the worker
 * sources call srtp_policy_create() (scripts/build-worker.sh decides).
 *
 *   3.x                                        2.x
 *   srtp_policy_create(&p)                     zeroed srtp_policy_t
 *   srtp_policy_set_ssrc(p, ssrc)              p.ssrc = ssrc
 *   srtp_policy_set_profile(p, profile)        srtp_crypto_policy_set_from_profile_for_rtp/_rtcp
 *   srtp_policy_add_key(p, k, kl, s, sl, 0, 0) p.key = k||s (no MKI: mediasoup passes none)
 *   srtp_policy_set_allow_repeat_tx(p, b)      p.allow_repeat_tx = b
 *   srtp_policy_set_window_size(p, n)          p.window_size = n
 *   srtp_create(&ctx, p)                       srtp_create(&ctx, &p.policy)
 *   srtp_policy_destroy(p)                     (free; 2.x copied the keys in srtp_create)
 */
#include <new>
#include <vector>

namespace lessoncast_srtp3
{
	struct Policy
	{
		::srtp_policy_t policy{};
		std::vector<uint8_t> keyAndSalt;
		bool hasProfile{ false };
	};
} // namespace lessoncast_srtp3

inline srtp_err_status_t srtp_policy_create(lessoncast_srtp3::Policy** policy)
{
	if (!policy)
		return srtp_err_status_bad_param;

	*policy = new (std::nothrow) lessoncast_srtp3::Policy();

	return *policy ? srtp_err_status_ok : srtp_err_status_alloc_fail;
}

inline void srtp_policy_destroy(lessoncast_srtp3::Policy* policy)
{
	delete policy;
}

inline srtp_err_status_t srtp_policy_set_ssrc(lessoncast_srtp3::Policy* policy, srtp_ssrc_t ssrc)
{
	if (!policy)
		return srtp_err_status_bad_param;

	policy->policy.ssrc = ssrc;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_profile(lessoncast_srtp3::Policy* policy, srtp_profile_t profile)
{
	if (!policy)
		return srtp_err_status_bad_param;

	srtp_err_status_t st = srtp_crypto_policy_set_from_profile_for_rtp(&policy->policy.rtp, profile);

	if (st != srtp_err_status_ok)
		return st;

	st = srtp_crypto_policy_set_from_profile_for_rtcp(&policy->policy.rtcp, profile);

	if (st != srtp_err_status_ok)
		return st;

	policy->hasProfile = true;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_add_key(
  lessoncast_srtp3::Policy* policy,
  const uint8_t* key,
  size_t keyLen,
  const uint8_t* salt,
  size_t saltLen,
  const uint8_t* mki,
  size_t mkiLen)
{
	if (!policy || !key || !salt || keyLen == 0 || saltLen == 0)
		return srtp_err_status_bad_param;

	/* One master key, no MKI: the only form mediasoup uses; 2.x would need
	 * srtp_master_key_t arrays for more. */
	if (mki || mkiLen != 0 || !policy->keyAndSalt.empty())
		return srtp_err_status_bad_param;

	policy->keyAndSalt.assign(key, key + keyLen);
	policy->keyAndSalt.insert(policy->keyAndSalt.end(), salt, salt + saltLen);
	policy->policy.key = policy->keyAndSalt.data();

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_allow_repeat_tx(lessoncast_srtp3::Policy* policy, bool allow)
{
	if (!policy)
		return srtp_err_status_bad_param;

	policy->policy.allow_repeat_tx = allow ? 1 : 0;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_window_size(lessoncast_srtp3::Policy* policy, size_t windowSize)
{
	/* 2.x accepts 64 ... 2^15 (0 = its default of 128). */
	if (!policy || (windowSize != 0 && (windowSize < 64 || windowSize >= 0x8000)))
		return srtp_err_status_bad_param;

	policy->policy.window_size = static_cast<unsigned long>(windowSize);

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_create(srtp_t* session, lessoncast_srtp3::Policy* policy)
{
	if (!session || !policy || !policy->hasProfile || policy->keyAndSalt.empty())
		return srtp_err_status_bad_param;

	/* A profile's key and salt lengths must add up to what its cipher reads
	 * from policy.key (2.x trusts the buffer). */
	if (policy->keyAndSalt.size() != static_cast<size_t>(policy->policy.rtp.cipher_key_len))
		return srtp_err_status_bad_param;

	policy->policy.next = nullptr;

	return ::srtp_create(session, &policy->policy);
}

/* From here on, mediasoup's `srtp_policy_t` names the 3.x opaque handle. */
#define srtp_policy_t lessoncast_srtp3::Policy*
#endif /* LESSONCAST_SRTP3_POLICY_API */

#endif /* LESSONCAST_SRTP3_ON_SRTP2_H */
