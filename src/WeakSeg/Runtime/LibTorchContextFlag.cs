using System.Runtime.InteropServices;
using TorchSharp;

namespace WeakSeg.Runtime;

/// <summary>
/// One of libtorch's on/off switches on its global context (<c>at::globalContext()</c>), e.g. <c>userEnabledNNPACK</c> /
/// <c>setUserEnabledNNPACK</c> or <c>userEnabledMkldnn</c> / <c>setUserEnabledMkldnn</c>, which TorchSharp does not expose:
/// reached through the symbols libtorch exports, as PyTorch's <c>torch.backends.*</c> flags reach them.
/// </summary>
sealed class LibTorchContextFlag(string getterSymbol, string setterSymbol)
{
    const string GlobalContextSymbol = "_ZN2at13globalContextEv";   // at::Context& at::globalContext()

    /// <summary>The address of an exported libtorch or c10 symbol. Lookup goes through the handle of TorchSharp's native
    /// library, which also searches libtorch and c10 (it links them).</summary>
    public static bool TryExport(string symbol, out IntPtr address)
    {
        address = IntPtr.Zero;
        return NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null, out var handle)
            && NativeLibrary.TryGetExport(handle, symbol, out address);
    }

    /// <summary>True when libtorch exports the context and both accessors of this flag.</summary>
    public bool IsExported => TryAccessors(out _, out _, out _);

    /// <summary>The flag's value now; null when it is not exported.</summary>
    public unsafe bool? Value
    {
        get
        {
            if (!TryAccessors(out var context, out var getter, out _)) return null;
            return ((delegate* unmanaged<IntPtr, byte>)getter)(((delegate* unmanaged<IntPtr>)context)()) != 0;
        }
    }

    /// <summary>Sets the flag; false (and nothing done) when it is not exported.</summary>
    public unsafe bool TrySet(bool enabled)
    {
        if (!TryAccessors(out var context, out _, out var setter)) return false;
        ((delegate* unmanaged<IntPtr, byte, void>)setter)(((delegate* unmanaged<IntPtr>)context)(), enabled ? (byte)1 : (byte)0);
        return true;
    }

    bool TryAccessors(out IntPtr context, out IntPtr getter, out IntPtr setter)
    {
        getter = setter = IntPtr.Zero;
        return TryExport(GlobalContextSymbol, out context) && TryExport(getterSymbol, out getter) && TryExport(setterSymbol, out setter);
    }
}
