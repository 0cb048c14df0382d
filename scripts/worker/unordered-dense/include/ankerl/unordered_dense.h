/*
 * lessoncast: the part of ankerl::unordered_dense that mediasoup (>= 3.20.1)
 * uses, over the C++ standard containers.
 *
 * unordered_dense is a header-only library that no Debian release packages
 * and that is not on npm, so the offline worker build cannot fetch it.
 * mediasoup uses only unordered_dense::map, ::set and ::hash, with integer,
 * enum, pointer and string keys and a few custom hashers (which declare
 * `is_avalanching` and return uint64_t). std::unordered_map/set offer every
 * member mediasoup calls (find, emplace, try_emplace, insert_or_assign,
 * contains, reserve, erase, iteration).
 *
 * What differs: std::unordered_map is node-based (one allocation per entry,
 * slower iteration) where unordered_dense stores entries contiguously, and
 * std::hash of an integer is the identity on libstdc++. mediasoup combines
 * integer hashes (Utils::Crypto::HashCombine) for transport tuples and port
 * ranges, so ::hash of integers here mixes the bits (the 64-bit finalizer of
 * MurmurHash3, public domain algorithm) instead of returning the value.
 * The cost of the whole substitution is measured in docs/performance.md.
 */

#ifndef LESSONCAST_ANKERL_UNORDERED_DENSE_COMPAT_H
#define LESSONCAST_ANKERL_UNORDERED_DENSE_COMPAT_H

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#define ANKERL_UNORDERED_DENSE_VERSION_MAJOR 5
#define ANKERL_UNORDERED_DENSE_LESSONCAST_COMPAT 1

namespace ankerl
{
	namespace unordered_dense
	{
		namespace detail
		{
			// Spreads every input bit over the whole 64-bit result, so that
			// combined hashes of small integers do not collide in buckets.
			constexpr uint64_t Mix(uint64_t x) noexcept
			{
				x ^= x >> 33;
				x *= 0xff51afd7ed558ccdULL;
				x ^= x >> 33;
				x *= 0xc4ceb9fe1a85ec53ULL;
				x ^= x >> 33;

				return x;
			}
		} // namespace detail

		template<typename T, typename Enable = void>
		struct hash
		{
			// Anything else (strings, user types with a std::hash) uses the
			// standard hash.
			uint64_t operator()(const T& value) const
			  noexcept(noexcept(std::hash<T>{}(std::declval<const T&>())))
			{
				return static_cast<uint64_t>(std::hash<T>{}(value));
			}
		};

		template<typename T>
		struct hash<T, std::enable_if_t<std::is_integral_v<T> || std::is_enum_v<T>>>
		{
			using is_avalanching = void;

			uint64_t operator()(const T& value) const noexcept
			{
				if constexpr (std::is_enum_v<T>)
				{
					return detail::Mix(static_cast<uint64_t>(static_cast<std::underlying_type_t<T>>(value)));
				}
				else
				{
					return detail::Mix(static_cast<uint64_t>(value));
				}
			}
		};

		template<typename T>
		struct hash<T*>
		{
			using is_avalanching = void;

			uint64_t operator()(T* value) const noexcept
			{
				return detail::Mix(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(value)));
			}
		};

		template<typename T>
		struct hash<std::unique_ptr<T>>
		{
			using is_avalanching = void;

			uint64_t operator()(const std::unique_ptr<T>& value) const noexcept
			{
				return hash<T*>{}(value.get());
			}
		};

		template<typename T>
		struct hash<std::shared_ptr<T>>
		{
			using is_avalanching = void;

			uint64_t operator()(const std::shared_ptr<T>& value) const noexcept
			{
				return hash<T*>{}(value.get());
			}
		};

		// std containers want a size_t result; the hashers above (and
		// mediasoup's own) return uint64_t, which is size_t on every 64-bit
		// target this build supports.
		static_assert(sizeof(uint64_t) == sizeof(size_t), "64-bit targets only");

		template<
		  class Key,
		  class T,
		  class Hash       = hash<Key>,
		  class KeyEqual   = std::equal_to<Key>,
		  class Allocator  = std::allocator<std::pair<const Key, T>>>
		using map = std::unordered_map<Key, T, Hash, KeyEqual, Allocator>;

		template<
		  class Key,
		  class Hash      = hash<Key>,
		  class KeyEqual  = std::equal_to<Key>,
		  class Allocator = std::allocator<Key>>
		using set = std::unordered_set<Key, Hash, KeyEqual, Allocator>;
	} // namespace unordered_dense
} // namespace ankerl

#endif /* LESSONCAST_ANKERL_UNORDERED_DENSE_COMPAT_H */
