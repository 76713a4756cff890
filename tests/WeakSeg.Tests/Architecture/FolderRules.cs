using System.Reflection;
using System.Reflection.Emit;

namespace WeakSeg.Tests.Architecture;

/// <summary>One use of a type of another folder: <paramref name="From"/> and <paramref name="To"/> are namespaces, <paramref name="Via"/> says where.</summary>
public sealed record FolderEdge(string From, string To, string Via)
{
    public override string ToString() => $"{From} → {To} ({Via})";
}

/// <summary>
/// The floor plan of ARCHITECTURE.md as data, and the scan that finds which folder uses which. A folder is a namespace (namespace =
/// folder); the rules speak of a library's top-level folders ("rooms": WeakSeg.Data, WeakSeg.Methods, …; the root namespace is
/// "WeakSeg") plus one rule inside Methods: a method folder uses only the Methods contract, Methods.Localization and its own types,
/// never another method's folder (except where a paper builds on another: FSR and MoRe on ToCo).
/// </summary>
public static class FolderRules
{
    public const string Root = "WeakSeg", Cli = "WeakSeg.Cli";

    /// <summary>Top-level room → the rooms it may use (its own always).</summary>
    public static readonly IReadOnlyDictionary<string, string[]> MayUse = new Dictionary<string, string[]>
    {
        [Root] = [],
        ["IO"] = [Root],
        ["Runtime"] = [Root],
        ["Interop"] = [Root, "IO"],
        ["Data"] = [Root, "IO"],
        ["Models"] = [Root, "IO", "Runtime", "Interop"],
        // The training-job template (TrainingJob) streams dataset samples through the BatchLoader.
        ["Training"] = [Root, "IO", "Runtime", "Data"],
        // The map file format (CamMapFile) lives in Evaluation and PseudoLabels writes labels from it: a known two-room circle.
        ["Evaluation"] = [Root, "IO", "Runtime", "Interop", "Data", "PseudoLabels"],
        ["PseudoLabels"] = [Root, "IO", "Runtime", "Interop", "Data", "Evaluation"],
        // Reports and loss curves read a run folder's metrics.jsonl through its layout (RunDirectory).
        ["Visualization"] = [Root, "IO", "Runtime", "Interop", "Data", "Evaluation", "Training"],
        // Single-stage methods (ToCo, MoRe) refine their labels inside training with PAR (Refinement/Par).
        ["Methods"] = [Root, "IO", "Runtime", "Interop", "Models", "Training", "Refinement"],
        ["Refinement"] = [Root, "IO", "Runtime", "Interop", "Data", "Models", "Training", "Evaluation", "PseudoLabels"],
        ["Segmentation"] = [Root, "IO", "Runtime", "Interop", "Data", "Models", "Training", "Evaluation", "Refinement", "Visualization"],
        ["Pipelines"] = [Root, "IO", "Runtime", "Interop", "Data", "Models", "Training", "Evaluation", "PseudoLabels", "Visualization",
            "Methods", "Refinement", "Segmentation"],
        [Cli] = [Root, "IO", "Runtime", "Interop", "Data", "Models", "Training", "Evaluation", "PseudoLabels", "Visualization",
            "Methods", "Refinement", "Segmentation", "Pipelines"],
    };

    /// <summary>Sub-folders of Methods that are shared by every method, not methods themselves.</summary>
    public static readonly string[] SharedMethodFolders = ["Localization"];

    /// <summary>Method folders that may use another method's folder: a paper that builds on another (folder → the folder it builds on).</summary>
    public static readonly (string From, string To)[] MethodBuildsOn = [("Fsr", "ToCo"), ("MoRe", "ToCo")];

    /// <summary>The one type in the Methods contract that names methods: the catalog of built-in registrations.</summary>
    public const string Catalog = "WeakSeg.Methods.BuiltInMethods";

    /// <summary>
    /// Types outside Methods that still name a method's folder (known debts, each with its way out). Everything else outside Methods
    /// reaches methods through the registry only.
    /// </summary>
    public static readonly string[] KnownMethodUsers = [];

    /// <summary>The room of a namespace: "WeakSeg" → Root, "WeakSeg.Data.Synthetic" → "Data", "WeakSeg.Cli.Commands" → Cli.</summary>
    public static string RoomOf(string ns)
    {
        if (ns == Root) return Root;
        if (ns == Cli || ns.StartsWith(Cli + ".", StringComparison.Ordinal)) return Cli;
        var rest = ns[(Root.Length + 1)..];
        int dot = rest.IndexOf('.');
        return dot < 0 ? rest : rest[..dot];
    }

    /// <summary>"WeakSeg.Methods.WeakTr.X" → "WeakTr"; the Methods contract itself → null.</summary>
    static string? MethodFolderOf(string ns)
    {
        const string prefix = "WeakSeg.Methods.";
        if (!ns.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var rest = ns[prefix.Length..];
        int dot = rest.IndexOf('.');
        return dot < 0 ? rest : rest[..dot];
    }

    /// <summary>The edges that break a rule, each with the reason.</summary>
    public static IReadOnlyList<string> Violations(IEnumerable<FolderEdge> edges)
    {
        var problems = new List<string>();
        foreach (var e in edges)
        {
            if (e.From == e.To) continue;
            string from = RoomOf(e.From), to = RoomOf(e.To);
            if (from != to)
            {
                if (!MayUse.TryGetValue(from, out var allowed)) problems.Add($"{e}: folder {from} is not in the floor plan");
                else if (!allowed.Contains(to)) problems.Add($"{e}: {from} may not use {to}");
            }
            var fromMethod = MethodFolderOf(e.From);
            var toMethod = MethodFolderOf(e.To);
            if (toMethod is null || SharedMethodFolders.Contains(toMethod)) continue;
            // A method's folder is used: from its own folder, from a paper that builds on it, or from the catalog.
            if (fromMethod == toMethod) continue;
            if (fromMethod is not null && !SharedMethodFolders.Contains(fromMethod))
            {
                if (!MethodBuildsOn.Contains((fromMethod, toMethod))) problems.Add($"{e}: method folder {fromMethod} may not use method folder {toMethod}");
                continue;
            }
            if (e.Via.StartsWith(Catalog, StringComparison.Ordinal) || KnownMethodUsers.Any(k => e.Via.StartsWith(k, StringComparison.Ordinal))) continue;
            problems.Add($"{e}: only the method's own folder and {Catalog} may name method folder {toMethod}");
        }
        return problems;
    }

    /// <summary>
    /// Every use, by a type of <paramref name="assembly"/>, of a type of another namespace that starts with "WeakSeg": base type,
    /// interfaces, fields, properties, events, method and constructor signatures, generic arguments, and what method bodies use
    /// (locals and the types, fields and methods their instructions name).
    /// Compiler-generated types (closures, state machines) count for the type they are declared in, so captured variables count.
    /// </summary>
    public static IReadOnlyList<FolderEdge> Scan(Assembly assembly)
    {
        var edges = new HashSet<FolderEdge>();
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var type in assembly.GetTypes())
        {
            var owner = type;
            while (owner.DeclaringType is not null) owner = owner.DeclaringType;
            var from = owner.Namespace;
            if (from is null || !from.StartsWith(Root, StringComparison.Ordinal)) continue;
            var via = type.FullName ?? type.Name;

            void Use(Type? used, string what)
            {
                foreach (var t in Expand(used))
                {
                    var to = t.Namespace;
                    if (to is null || to == from || !(to == Root || to.StartsWith(Root + ".", StringComparison.Ordinal))) continue;
                    edges.Add(new FolderEdge(from, to, $"{via} {what}"));
                }
            }

            Use(type.BaseType, "base type");
            foreach (var i in type.GetInterfaces()) Use(i, "interface");
            foreach (var f in type.GetFields(all)) Use(f.FieldType, "field " + f.Name);
            foreach (var p in type.GetProperties(all)) Use(p.PropertyType, "property " + p.Name);
            foreach (var ev in type.GetEvents(all)) Use(ev.EventHandlerType, "event " + ev.Name);
            foreach (var m in type.GetMethods(all))
            {
                Use(m.ReturnType, "method " + m.Name);
                foreach (var p in m.GetParameters()) Use(p.ParameterType, "method " + m.Name);
                if (m.IsGenericMethodDefinition)
                    foreach (var g in m.GetGenericArguments()) foreach (var c in g.GetGenericParameterConstraints()) Use(c, "method " + m.Name);
                foreach (var t in TypesInBody(m)) Use(t, "body of " + m.Name);
            }
            foreach (var c in type.GetConstructors(all))
            {
                foreach (var p in c.GetParameters()) Use(p.ParameterType, "constructor");
                foreach (var t in TypesInBody(c)) Use(t, "body of constructor");
            }
            if (type.IsGenericTypeDefinition)
                foreach (var g in type.GetGenericArguments()) foreach (var c in g.GetGenericParameterConstraints()) Use(c, "constraint");
        }
        return edges.OrderBy(e => e.From, StringComparer.Ordinal).ThenBy(e => e.To, StringComparer.Ordinal).ThenBy(e => e.Via, StringComparer.Ordinal).ToList();
    }

    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>
    /// The types a method body uses: its locals and the operands of its instructions that name a type, field or method (the declaring
    /// type, a field's type, a generic method's type arguments). Reads the IL with the opcode table of <see cref="OpCodes"/>.
    /// </summary>
    static IEnumerable<Type> TypesInBody(MethodBase method)
    {
        MethodBody? body;
        try { body = method.GetMethodBody(); }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { yield break; }
        if (body is null) yield break;
        foreach (var local in body.LocalVariables) yield return local.LocalType;
        var il = body.GetILAsByteArray() ?? [];
        var typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i++];
            if (value == 0xFE) value = unchecked((short)(0xFE00 | il[i++]));
            var op = OpCodesByValue[value];
            int size = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            if (op.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok)
            {
                MemberInfo? member = null;
                try { member = method.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs); }
                catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException or FileNotFoundException) { }
                switch (member)
                {
                    case Type t: yield return t; break;
                    case FieldInfo f: yield return f.DeclaringType!; yield return f.FieldType; break;
                    case MethodBase m:
                        if (m.DeclaringType is { } declaring) yield return declaring;
                        if (m.IsGenericMethod) foreach (var a in m.GetGenericArguments()) yield return a;
                        break;
                }
            }
            i += size;
        }
    }

    /// <summary>The type and every type inside it (array elements, generic arguments, by-ref and pointer targets).</summary>
    static IEnumerable<Type> Expand(Type? type)
    {
        if (type is null || type.IsGenericParameter) yield break;
        if (type.HasElementType)
        {
            foreach (var t in Expand(type.GetElementType())) yield return t;
            yield break;
        }
        if (type.IsGenericType)
        {
            foreach (var a in type.GetGenericArguments())
                foreach (var t in Expand(a)) yield return t;
            type = type.GetGenericTypeDefinition();
        }
        var outer = type;
        while (outer.DeclaringType is not null) outer = outer.DeclaringType;
        yield return outer;
    }
}
