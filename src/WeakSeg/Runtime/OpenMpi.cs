using System.Runtime.InteropServices;

namespace WeakSeg.Runtime;

/// <summary>
/// The few Open MPI calls WeakSeg uses, bound at run time from <c>libmpi.so.40</c> (Open MPI 3.x–5.x). Open MPI's handles
/// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are the addresses of exported global structs (<c>ompi_mpi_comm_world</c>, …), read
/// with dlsym. The library is opened with RTLD_GLOBAL first: Open MPI's own plugins (mca_*.so) resolve symbols of libmpi and
/// its dependencies from the global scope. Nothing here is touched unless the process was started by an MPI launcher
/// (<see cref="ProcessGroup"/>), so a machine without Open MPI never needs the library.
/// </summary>
internal sealed unsafe class OpenMpi
{
    const int RtldNow = 0x2, RtldGlobal = 0x100;
    const int ThreadSerialized = 2;                                           // MPI_THREAD_SERIALIZED
    static readonly IntPtr InPlace = 1;                                        // MPI_IN_PLACE in Open MPI's mpi.h

    readonly IntPtr _commWorld, _float, _double, _long, _byte, _sum, _max;
    readonly delegate* unmanaged<int*, IntPtr*, int, int*, int> _initThread;
    readonly delegate* unmanaged<int*, int> _initialized, _finalized;
    readonly delegate* unmanaged<int> _finalize;
    readonly delegate* unmanaged<IntPtr, int*, int> _commRank, _commSize;
    readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int> _allreduce;
    readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int> _bcast;
    readonly delegate* unmanaged<IntPtr, int> _barrier;
    readonly delegate* unmanaged<IntPtr, int, int> _abort;

    public string LibraryPath { get; }

    OpenMpi(IntPtr handle, string path)
    {
        LibraryPath = path;
        IntPtr Export(string name) => NativeLibrary.TryGetExport(handle, name, out var address) ? address
            : throw new WeakSegException($"{path}: does not export {name}; WeakSeg's MPI support needs Open MPI's libmpi (Debian: apt-get install openmpi-bin)");
        _commWorld = Export("ompi_mpi_comm_world");
        _float = Export("ompi_mpi_float");
        _double = Export("ompi_mpi_double");
        _long = Export("ompi_mpi_long");
        _byte = Export("ompi_mpi_byte");
        _sum = Export("ompi_mpi_op_sum");
        _max = Export("ompi_mpi_op_max");
        _initThread = (delegate* unmanaged<int*, IntPtr*, int, int*, int>)Export("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        _commRank = (delegate* unmanaged<IntPtr, int*, int>)Export("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<IntPtr, int*, int>)Export("MPI_Comm_size");
        _allreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int>)Export("MPI_Allreduce");
        _bcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int>)Export("MPI_Bcast");
        _barrier = (delegate* unmanaged<IntPtr, int>)Export("MPI_Barrier");
        _abort = (delegate* unmanaged<IntPtr, int, int>)Export("MPI_Abort");
    }

    /// <summary>Opens libmpi (path from WEAKSEG_MPI_LIBRARY, else libmpi.so.40) in the global scope. Errors are one line.</summary>
    public static OpenMpi Load()
    {
        var path = Environment.GetEnvironmentVariable("WEAKSEG_MPI_LIBRARY") is { Length: > 0 } chosen ? chosen : "libmpi.so.40";
        if (!OperatingSystem.IsLinux())
            throw new WeakSegException("this process was started by an MPI launcher, but WeakSeg's MPI support is for Linux with Open MPI only");
        var handle = DlOpen(path, RtldNow | RtldGlobal);
        if (handle == IntPtr.Zero)
            throw new WeakSegException($"this process was started by an MPI launcher, but {path} cannot be loaded ({DlErrorText()}); " +
                "install Open MPI (Debian: apt-get install openmpi-bin) or set WEAKSEG_MPI_LIBRARY to its libmpi");
        return new OpenMpi(handle, path);
    }

    /// <summary>MPI_Init_thread(MPI_THREAD_SERIALIZED) unless already initialised; returns (rank, size) in MPI_COMM_WORLD.</summary>
    public (int Rank, int Size) Init()
    {
        int flag;
        Check(_initialized(&flag), "MPI_Initialized");
        if (flag == 0)
        {
            int provided;
            Check(_initThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
            if (provided < ThreadSerialized)
                throw new WeakSegException($"{LibraryPath}: MPI provides thread level {provided}, WeakSeg needs MPI_THREAD_SERIALIZED (2)");
        }
        int rank, size;
        Check(_commRank(_commWorld, &rank), "MPI_Comm_rank");
        Check(_commSize(_commWorld, &size), "MPI_Comm_size");
        return (rank, size);
    }

    public void Shutdown()
    {
        int done;
        _finalized(&done);
        if (done == 0) _finalize();
    }

    public void Abort(int code) => _abort(_commWorld, code);

    public void Barrier() => Check(_barrier(_commWorld), "MPI_Barrier");

    public void AllreduceSum(float* data, int count) => Check(_allreduce(InPlace, (IntPtr)data, count, _float, _sum, _commWorld), "MPI_Allreduce");
    public void AllreduceSum(double* data, int count) => Check(_allreduce(InPlace, (IntPtr)data, count, _double, _sum, _commWorld), "MPI_Allreduce");
    public void AllreduceSum(long* data, int count) => Check(_allreduce(InPlace, (IntPtr)data, count, _long, _sum, _commWorld), "MPI_Allreduce");
    public void AllreduceMax(long* data, int count) => Check(_allreduce(InPlace, (IntPtr)data, count, _long, _max, _commWorld), "MPI_Allreduce");
    public void Broadcast(byte* data, int count, int root) => Check(_bcast((IntPtr)data, count, _byte, root, _commWorld), "MPI_Bcast");

    /// <summary>Open MPI's default error handler (MPI_ERRORS_ARE_FATAL) aborts the job before a call returns an error; this covers
    /// a library configured otherwise.</summary>
    static void Check(int code, string call)
    {
        if (code != 0) throw new WeakSegException($"{call} failed with MPI error code {code}");
    }

    [DllImport("libc.so.6", EntryPoint = "dlopen")]
    static extern IntPtr DlOpenNative([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc.so.6", EntryPoint = "dlerror")]
    static extern IntPtr DlError();

    static IntPtr DlOpen(string path, int flags)
    {
        try { return DlOpenNative(path, flags); }
        catch (EntryPointNotFoundException) { return LibDl.dlopen(path, flags); }                 // glibc < 2.34 keeps dlopen in libdl
    }

    static string DlErrorText()
    {
        IntPtr p;
        try { p = DlError(); }
        catch (EntryPointNotFoundException) { p = LibDl.dlerror(); }
        return p == IntPtr.Zero ? "unknown reason" : Marshal.PtrToStringUTF8(p) ?? "unknown reason";
    }

    static class LibDl
    {
        [DllImport("libdl.so.2")]
        public static extern IntPtr dlopen([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libdl.so.2")]
        public static extern IntPtr dlerror();
    }
}
