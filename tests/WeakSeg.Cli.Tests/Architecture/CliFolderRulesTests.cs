using System.Reflection;
using System.Text.RegularExpressions;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Architecture;

/// <summary>
/// The CLI's part of ARCHITECTURE.md: it keeps the floor plan (<see cref="FolderRules"/>), the library never uses it, no command uses a
/// sibling command's helpers (shared pieces live in <c>Options/</c>, <c>Output/</c> or the library), and the CLI is tested here only.
/// </summary>
public class CliFolderRulesTests
{
    static readonly Assembly CliAssembly = typeof(WeakSeg.Cli.Program).Assembly;
    static readonly IReadOnlyList<FolderEdge> CliEdges = FolderRules.Scan(CliAssembly);

    [Fact]
    public void The_cli_keeps_the_floor_plan()
    {
        var problems = FolderRules.Violations(CliEdges);
        Assert.True(problems.Count == 0, "folder rule violations:\n" + string.Join("\n", problems));
        Assert.True(CliEdges.Count > 20, $"{CliEdges.Count} edges");
    }

    [Fact]
    public void The_library_does_not_reference_the_cli()
    {
        var library = typeof(WeakSegException).Assembly;
        Assert.DoesNotContain(library.GetReferencedAssemblies(),
            a => string.Equals(a.Name, CliAssembly.GetName().Name, StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(FolderRules.Scan(library), e => FolderRules.RoomOf(e.To) == FolderRules.Cli);
    }

    /// <summary>A verb's file names no other verb's class (besides the catalog and a parent verb listing its subcommands): what two
    /// commands share is an option group (<c>Options/</c>), an output helper (<c>Output/</c>) or a library type.</summary>
    [Fact]
    public void No_command_uses_a_sibling_commands_helpers()
    {
        var commands = Path.Combine(TestPaths.RepoRoot, "src", "WeakSeg.Cli", "Commands");
        var problems = new List<string>();
        foreach (var file in Directory.EnumerateFiles(commands, "*.cs"))
        {
            var text = File.ReadAllText(file);
            var own = Regex.Matches(text, @"\bclass (\w+)").Select(m => m.Groups[1].Value).ToHashSet();
            foreach (Match use in Regex.Matches(text, @"\b(\w+Command)\.(\w+)"))
            {
                var (type, member) = (use.Groups[1].Value, use.Groups[2].Value);
                if (own.Contains(type) || member == "Create" && (Path.GetFileName(file) is "CommandCatalog.cs" or "BenchCommand.cs")) continue;
                problems.Add($"{Path.GetFileName(file)} uses {type}.{member}");
            }
        }
        Assert.True(problems.Count == 0, "commands borrowing from sibling commands:\n" + string.Join("\n", problems));
    }

    /// <summary>The runtime options are declared once (<c>Options/RuntimeOptions.cs</c>), not per command. The exceptions are other
    /// quantities under the same name: <c>synth --seed</c> (the dataset's seed), <c>synth --threads</c> (image workers) and
    /// <c>bench crf --threads</c> (the CRF's own threads).</summary>
    [Theory]
    [InlineData("--device")]
    [InlineData("--seed", "SynthCommand.cs")]
    [InlineData("--threads", "SynthCommand.cs", "BenchCommand.cs")]
    [InlineData("--workers")]
    public void Runtime_options_are_declared_once(string name, params string[] otherQuantities)
    {
        var cli = Path.Combine(TestPaths.RepoRoot, "src", "WeakSeg.Cli");
        var declaring = Directory.EnumerateFiles(cli, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && File.ReadAllText(f).Contains($"(\"{name}\")"))
            .Select(f => Path.GetFileName(f)).ToList();
        Assert.Contains("RuntimeOptions.cs", declaring);
        Assert.True(declaring.All(f => f == "RuntimeOptions.cs" || otherQuantities.Contains(f)), $"{name} declared in {string.Join(", ", declaring)}");
    }

    /// <summary>The library's tests do not run the CLI: every test that does lives in this project.</summary>
    [Fact]
    public void The_library_tests_do_not_use_the_cli()
    {
        var libraryTests = Path.Combine(TestPaths.RepoRoot, "tests", "WeakSeg.Tests");
        var users = Directory.EnumerateFiles(libraryTests, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") &&
                        !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Where(f => Regex.IsMatch(File.ReadAllText(f), @"using WeakSeg\.Cli\b|\bWeakSeg\.Cli\.(Program|CliErrors)\b|\bProgram\.(Run|Main|BuildRoot)\b|weakseg\.dll"))
            .Select(f => Path.GetRelativePath(libraryTests, f)).ToList();
        Assert.True(users.Count == 0, "library tests that use the CLI (move them to tests/WeakSeg.Cli.Tests):\n" + string.Join("\n", users));
        Assert.DoesNotContain("WeakSeg.Cli.csproj", File.ReadAllText(Path.Combine(libraryTests, "WeakSeg.Tests.csproj")));
    }
}
