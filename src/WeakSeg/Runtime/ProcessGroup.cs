using System.Runtime.InteropServices;

namespace WeakSeg.Runtime;

/// <summary>
/// The processes of one job: a single process, or the ranks of an MPI launch (<c>mpirun -np N weakseg …</c>, Slurm's
/// <c>srun</c>, the Kubernetes MPI operator). An MPI launch is recognised by its environment (OMPI_COMM_WORLD_SIZE, PMIX_RANK,
/// PMI_SIZE); only then is Open MPI loaded (<see cref="OpenMpi"/>). Without it, <see cref="World"/> is one process with rank 0,
/// every collective returns its input, and libmpi is never opened. All collectives are called by every rank in the same order.
/// </summary>
public sealed unsafe class ProcessGroup
{
    static readonly object Gate = new();
    static ProcessGroup? _world;
    readonly OpenMpi? _mpi;
    int _finalized;

    ProcessGroup(OpenMpi? mpi, int rank, int size) { _mpi = mpi; Rank = rank; Size = size; }

    /// <summary>One process on its own (no MPI): what <see cref="World"/> is without an MPI launch, and what library code that
    /// never runs distributed uses.</summary>
    public static ProcessGroup Single { get; } = new(null, 0, 1);

    /// <summary>This process's rank, 0-based.</summary>
    public int Rank { get; }

    /// <summary>Number of processes in the job (1 without MPI).</summary>
    public int Size { get; }

    /// <summary>True for rank 0, the rank that writes run directories, logs, checkpoints and ledgers.</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>True when more than one process takes part (collectives talk to other ranks).</summary>
    public bool IsDistributed => Size > 1;

    /// <summary>A failure every rank detected at the same point (after a collective): the job may end normally on all ranks.
    /// Any other failure under MPI aborts the job, so no rank is left waiting in a collective.</summary>
    public static bool FailureIsAgreed { get; private set; }

    /// <summary>True when the environment says an MPI launcher started this process.</summary>
    public static bool LaunchedByMpi => MpiEnvironmentSize() is not null;

    /// <summary>The job's processes; initialises MPI on first use when launched by an MPI launcher.</summary>
    public static ProcessGroup World
    {
        get
        {
            lock (Gate)
            {
                if (_world is not null) return _world;
                if (MpiEnvironmentSize() is null) return _world = Single;
                var mpi = OpenMpi.Load();
                var (rank, size) = mpi.Init();
                _world = new ProcessGroup(mpi, rank, size);
                AppDomain.CurrentDomain.ProcessExit += (_, _) => _world.Shutdown();
                return _world;
            }
        }
    }

    /// <summary>The launcher's world size from the environment (null without an MPI launch).</summary>
    static int? MpiEnvironmentSize()
    {
        foreach (var name in new[] { "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE" })
            if (int.TryParse(Environment.GetEnvironmentVariable(name), out var n) && n >= 1) return n;
        if (Environment.GetEnvironmentVariable("PMIX_RANK") is { Length: > 0 }) return 0;   // PMIx without a size variable: MPI tells
        return null;
    }

    /// <summary>Ends MPI (MPI_Finalize) once; a no-op without MPI. Called at process exit.</summary>
    public void Shutdown()
    {
        if (_mpi is null || Interlocked.Exchange(ref _finalized, 1) != 0) return;
        _mpi.Shutdown();
    }

    /// <summary>Ends every rank of the job at once (MPI_Abort) after an error only this rank saw; a no-op without MPI.</summary>
    public void Abort(int exitCode)
    {
        if (_mpi is null || !IsDistributed) return;
        Interlocked.Exchange(ref _finalized, 1);
        _mpi.Abort(exitCode);
    }

    /// <summary>Throws <paramref name="error"/> marked as seen by every rank (see <see cref="FailureIsAgreed"/>).</summary>
    public static Exception Agreed(Exception error)
    {
        FailureIsAgreed = true;
        return error;
    }

    public void Barrier() => _mpi?.Barrier();

    /// <summary>Element-wise sum over ranks, in place.</summary>
    public void AllreduceSum(Span<double> values)
    {
        if (!IsDistributed || values.IsEmpty) return;
        fixed (double* p = values) _mpi!.AllreduceSum(p, values.Length);
    }

    /// <summary>Element-wise sum over ranks, in place.</summary>
    public void AllreduceSum(Span<long> values)
    {
        if (!IsDistributed || values.IsEmpty) return;
        fixed (long* p = values) _mpi!.AllreduceSum(p, values.Length);
    }

    /// <summary>Element-wise sum over ranks, in place (one MPI call per ≤ 2^30 elements).</summary>
    public void AllreduceSum(Span<float> values)
    {
        if (!IsDistributed || values.IsEmpty) return;
        fixed (float* p = values)
            for (long offset = 0; offset < values.Length; offset += 1 << 30)
                _mpi!.AllreduceSum(p + offset, (int)Math.Min(1 << 30, values.Length - offset));
    }

    /// <summary>Element-wise maximum over ranks, in place.</summary>
    public void AllreduceMax(Span<long> values)
    {
        if (!IsDistributed || values.IsEmpty) return;
        fixed (long* p = values) _mpi!.AllreduceMax(p, values.Length);
    }

    /// <summary>Whether <paramref name="mine"/> holds on any rank (a logical OR over ranks).</summary>
    public bool Any(bool mine)
    {
        Span<long> flag = [mine ? 1 : 0];
        AllreduceMax(flag);
        return flag[0] != 0;
    }

    /// <summary>Overwrites <paramref name="data"/> on every rank with rank <paramref name="root"/>'s bytes.</summary>
    public void Broadcast(Span<byte> data, int root = 0)
    {
        if (!IsDistributed || data.IsEmpty) return;
        fixed (byte* p = data)
            for (long offset = 0; offset < data.Length; offset += 1 << 30)
                _mpi!.Broadcast(p + offset, (int)Math.Min(1 << 30, data.Length - offset), root);
    }

    /// <summary>Rank <paramref name="root"/>'s string on every rank (null stays null).</summary>
    public string? Broadcast(string? value, int root = 0)
    {
        if (!IsDistributed) return value;
        var bytes = value is null ? [] : System.Text.Encoding.UTF8.GetBytes(value);
        Span<long> length = [Rank == root ? (value is null ? -1 : bytes.Length) : 0];
        Span<byte> lengthBytes = MemoryMarshal.AsBytes(length);
        Broadcast(lengthBytes, root);
        if (length[0] < 0) return null;
        if (Rank != root) bytes = new byte[length[0]];
        Broadcast(bytes, root);
        return System.Text.Encoding.UTF8.GetString(bytes);
    }

    /// <summary>
    /// Runs <paramref name="work"/> on every rank; if it fails (<see cref="WeakSegException"/>) on any rank, it fails on all of them
    /// at this point (the failing rank with its own message, the others naming the failure as elsewhere), so no rank goes on to a
    /// collective the others never reach. Without MPI: just runs it.
    /// </summary>
    public void AllOrNone(Action work)
    {
        WeakSegException? error = null;
        try { work(); }
        catch (WeakSegException e) { error = e; }
        if (!IsDistributed)
        {
            if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
            return;
        }
        if (Any(error is not null))
            throw Agreed(error ?? new WeakSegException($"rank {Rank} of {Size}: another rank failed at the same point (its message above names the problem)"));
    }

    /// <summary>
    /// Runs <paramref name="rootWork"/> on rank 0 only (claiming an output folder, writing a record) and makes every rank fail with
    /// its error if it fails, so the other ranks never wait for a rank that has given up. Without MPI: just runs it.
    /// </summary>
    public void OnRoot(Action rootWork)
    {
        string? error = null;
        Exception? thrown = null;
        if (IsRoot)
        {
            try { rootWork(); }
            catch (WeakSegException e) { error = e.Message; thrown = e; }
        }
        if (!IsDistributed)
        {
            if (thrown is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(thrown).Throw();
            return;
        }
        error = Broadcast(error);
        if (error is not null) throw Agreed(thrown ?? new WeakSegException(error));
    }
}
